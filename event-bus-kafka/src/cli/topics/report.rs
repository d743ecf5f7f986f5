//! The plan and what was applied, as a table for people or JSON for scripts.

use std::io::{self, Write};

use serde_json::{json, Value};

use super::super::output::write_table;
use super::super::OutputFormat;
use crate::provision::{
    ApplyReport, Ensured, Refusal, SettingPlan, TopicAction, TopicPlan, TopicRole, Verdict,
};

/// Writes the plans (and what was applied) in `format`.
pub(super) fn write(
    out: &mut (dyn Write + Send),
    format: OutputFormat,
    bootstrap_servers: &str,
    ensured: &Ensured,
) -> io::Result<()> {
    match format {
        OutputFormat::Text => write_text(out, bootstrap_servers, ensured),
        OutputFormat::Json => {
            let document = document(bootstrap_servers, ensured);
            serde_json::to_writer_pretty(&mut *out, &document).map_err(io::Error::from)?;
            writeln!(out)
        }
    }
}

fn write_text(
    out: &mut (dyn Write + Send),
    bootstrap_servers: &str,
    ensured: &Ensured,
) -> io::Result<()> {
    writeln!(out, "Topics on {bootstrap_servers}:")?;
    let mut rows = vec![[
        "TOPIC",
        "SETTING",
        "CURRENT",
        "WANTED",
        "WANTED BY",
        "ACTION",
    ]
    .map(String::from)
    .to_vec()];
    let mut reasons: Vec<String> = Vec::new();
    let mut refer = |topic: &str, what: &str, refusal: &Refusal| {
        reasons.push(format!("{topic} {what}: {refusal}"));
        format!("REFUSED ({})", reasons.len())
    };
    for plan in &ensured.plans {
        let name = &plan.desired.name;
        let action = match &plan.blocked {
            Some(refusal) => refer(name, "creation", refusal),
            None => topic_action_text(plan.action()).to_owned(),
        };
        let exists = if plan.observed.is_some() {
            "exists"
        } else {
            "missing"
        };
        rows.push(vec![
            name.clone(),
            "(topic)".into(),
            exists.into(),
            String::new(),
            role_text(&plan.desired.role),
            action,
        ]);
        for setting in &plan.settings {
            let action = match &setting.verdict {
                Verdict::Refused(refusal) => refer(name, &setting.setting.to_string(), refusal),
                verdict => verdict_text(verdict).to_owned(),
            };
            rows.push(vec![
                String::new(),
                setting.setting.to_string(),
                current_text(setting),
                setting.wanted.value.clone(),
                setting.wanted.origin.to_string(),
                action,
            ]);
        }
    }
    write_table(out, &rows)?;
    if !reasons.is_empty() {
        writeln!(out, "\nRefused:")?;
        for (n, reason) in reasons.iter().enumerate() {
            writeln!(out, "  ({}) {reason}", n + 1)?;
        }
    }
    for plan in ensured
        .plans
        .iter()
        .filter(|p| p.partitions_to_add().is_some())
    {
        writeln!(
            out,
            "\nNote: adding partitions to {} changes the partition of most keys: a key's new \
             events may be consumed before its older ones still waiting in the old partition. \
             Add them while the topic's consumers have no lag.",
            plan.desired.name
        )?;
    }
    writeln!(out, "\n{}", summary_text(&ensured.plans))?;
    match &ensured.applied {
        None if ensured
            .plans
            .iter()
            .all(|p| p.action() == TopicAction::InSync) =>
        {
            writeln!(out, "Every topic is as declared.")
        }
        None => writeln!(
            out,
            "Dry run: nothing changed. Run again with --execute to make the changes not refused."
        ),
        Some(applied) => write_applied_text(out, applied),
    }
}

fn write_applied_text(out: &mut (dyn Write + Send), applied: &ApplyReport) -> io::Result<()> {
    for topic in &applied.created {
        writeln!(out, "Created {topic}.")?;
    }
    for (topic, count) in &applied.partitions_added {
        writeln!(out, "Added partitions to {topic}: it has {count} now.")?;
    }
    for (topic, names) in &applied.configs_set {
        writeln!(out, "Set {} on {topic}.", names.join(", "))?;
    }
    for failure in &applied.failures {
        writeln!(out, "FAILED: {failure}")?;
    }
    for topic in &applied.unconfirmed {
        writeln!(
            out,
            "Not yet visible: the change of {topic} (run ensure again to check)."
        )?;
    }
    Ok(())
}

fn topic_action_text(action: TopicAction) -> &'static str {
    match action {
        TopicAction::InSync => "in sync",
        TopicAction::Create => "create",
        TopicAction::Update => "update",
        TopicAction::Refused => "refused",
    }
}

fn verdict_text(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::InSync => "ok",
        Verdict::Create => "create",
        Verdict::AddPartitions => "add partitions",
        Verdict::Set => "set",
        Verdict::Refused(_) => "REFUSED",
    }
}

fn role_text(role: &TopicRole) -> String {
    match role {
        TopicRole::Events { event_types, .. } => format!("{} event type(s)", event_types.len()),
        TopicRole::DeadLetters { sources } => format!("dead letters of {}", sources.join(", ")),
    }
}

fn current_text(setting: &SettingPlan) -> String {
    match &setting.current {
        None => "-".into(),
        Some(value) if setting.current_is_default => format!("{value} (default)"),
        Some(value) => value.clone(),
    }
}

fn counts(plans: &[TopicPlan]) -> [(TopicAction, usize); 4] {
    [
        TopicAction::Create,
        TopicAction::Update,
        TopicAction::InSync,
        TopicAction::Refused,
    ]
    .map(|action| {
        (
            action,
            plans.iter().filter(|p| p.action() == action).count(),
        )
    })
}

fn summary_text(plans: &[TopicPlan]) -> String {
    let parts: Vec<String> = counts(plans)
        .iter()
        .map(|(action, n)| format!("{n} {}", topic_action_text(*action)))
        .collect();
    let refused: usize = plans.iter().map(|p| p.refusals().count()).sum();
    format!(
        "{} topic(s): {}; {refused} change(s) refused.",
        plans.len(),
        parts.join(", ")
    )
}

fn document(bootstrap_servers: &str, ensured: &Ensured) -> Value {
    let topics: Vec<Value> = ensured.plans.iter().map(topic_json).collect();
    let summary: serde_json::Map<String, Value> = counts(&ensured.plans)
        .iter()
        .map(|(action, n)| (action.as_str().to_owned(), json!(n)))
        .chain([(
            "refused_changes".to_owned(),
            json!(ensured
                .plans
                .iter()
                .map(|p| p.refusals().count())
                .sum::<usize>()),
        )])
        .collect();
    json!({
        "bootstrap_servers": bootstrap_servers,
        "executed": ensured.applied.is_some(),
        "topics": topics,
        "summary": summary,
        "applied": ensured.applied.as_ref().map(applied_json),
    })
}

fn topic_json(plan: &TopicPlan) -> Value {
    let (event_types, sources) = match &plan.desired.role {
        TopicRole::Events { event_types, .. } => (
            event_types.iter().map(|t| (*t).to_owned()).collect(),
            Vec::new(),
        ),
        TopicRole::DeadLetters { sources } => (Vec::new(), sources.clone()),
    };
    json!({
        "topic": plan.desired.name,
        "role": plan.desired.role.kind(),
        "event_types": event_types,
        "dead_letters_of": sources,
        "exists": plan.observed.is_some(),
        "action": plan.action().as_str(),
        "refusal": plan.blocked.as_ref().map(refusal_json),
        "settings": plan.settings.iter().map(|s| json!({
            "setting": s.setting.to_string(),
            "current": s.current,
            "current_is_default": s.current_is_default,
            "wanted": s.wanted.value,
            "wanted_by": s.wanted.origin.to_string(),
            "action": s.verdict.as_str(),
            "refusal": match &s.verdict { Verdict::Refused(r) => Some(refusal_json(r)), _ => None },
        })).collect::<Vec<_>>(),
    })
}

fn refusal_json(refusal: &Refusal) -> Value {
    json!({ "kind": refusal.kind(), "reason": refusal.to_string() })
}

fn applied_json(applied: &ApplyReport) -> Value {
    json!({
        "created": applied.created,
        "partitions_added": applied.partitions_added.iter().map(|(t, n)| json!({"topic": t, "partitions": n})).collect::<Vec<_>>(),
        "configs_set": applied.configs_set.iter().map(|(t, names)| json!({"topic": t, "configs": names})).collect::<Vec<_>>(),
        "failures": applied.failures.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "unconfirmed": applied.unconfirmed,
    })
}
