//! The `event-bus` binary's help and shell completions: every command, nested ones
//! included, lists the exit codes in its `--help`; `event-bus completions bash` is a
//! script bash loads and completes subcommands and flags with; the other shells get
//! theirs.

use std::path::Path;
use std::process::{Command, Output, Stdio};

const BINARY: &str = env!("CARGO_BIN_EXE_event-bus");

fn run(args: &[&str]) -> Output {
    let mut command = Command::new(BINARY);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("EVENT_BUS_")) {
        command.env_remove(name);
    }
    command
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("event-bus runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The subcommand names of a `--help` text's `Commands:` section (`help` left out).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_command_states_the_exit_codes_in_its_help() {
    let mut pending = vec![Vec::<String>::new()];
    let mut checked = Vec::new();
    while let Some(path) = pending.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let output = run(&args);
        let help = text(&output.stdout);
        let shown = format!("event-bus {}", path.join(" "));
        assert_eq!(
            output.status.code(),
            Some(0),
            "{shown}: {}",
            text(&output.stderr)
        );
        // `dev --help` is the dev stack's own, with its own list.
        for needle in ["Exit codes:", "  0  ", "  2  usage error", "  3  "] {
            assert!(
                help.contains(needle),
                "`{needle}` not in `{shown} --help`:\n{help}"
            );
        }
        for name in subcommands(&help) {
            let mut next = path.clone();
            next.push(name);
            pending.push(next);
        }
        checked.push(shown);
    }
    // The walk reached the nested commands, not only the top level.
    for nested in [
        "event-bus outbox relay",
        "event-bus schemas check",
        "event-bus dlq show",
    ] {
        assert!(
            checked.iter().any(|c| c == nested),
            "{nested} in {checked:?}"
        );
    }
}

/// Runs `script` in bash after loading the completion script at `completions`.
fn bash(completions: &Path, script: &str) -> String {
    let output = Command::new("bash")
        .args(["--norc", "--noprofile", "-c"])
        .arg(format!("source '{}' && {script}", completions.display()))
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
}

/// What the loaded completion `function` offers for the words typed so far (the last one
/// being completed), called as bash calls it: `function <command> <current> <previous>`.
fn offered(completions: &Path, function: &str, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let current = words.last().copied().unwrap_or_default();
    let previous = words.len().checked_sub(2).map_or("", |i| words[i]);
    let script = format!(
        "COMP_WORDS=({}); COMP_CWORD={}; {function} event-bus '{current}' '{previous}'; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        quoted.join(" "),
        words.len() - 1
    );
    bash(completions, &script)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_loads_the_completion_script_and_completes_commands_and_flags() {
    let output = run(&["completions", "bash", "--bin-name", "event-bus"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let dir = std::env::temp_dir().join(format!("event-bus-completions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let script = dir.join("event-bus.bash");
    std::fs::write(&script, &output.stdout).expect("script written");

    // `complete … -F <function> event-bus`
    let registered = bash(&script, "complete -p event-bus");
    let function = registered
        .split_whitespace()
        .skip_while(|word| *word != "-F")
        .nth(1)
        .unwrap_or_else(|| panic!("no completion function registered: {registered}"));
    let commands = offered(&script, function, &["event-bus", "outbox", "re"]);
    assert!(
        commands.contains(&"relay".to_owned()) && commands.contains(&"retry".to_owned()),
        "{commands:?}"
    );
    let flags = offered(&script, function, &["event-bus", "consume-events", "--obs"]);
    assert_eq!(flags, ["--observability-address"], "{flags:?}");
    let shells = offered(&script, function, &["event-bus", "completions", ""]);
    assert!(shells.contains(&"zsh".to_owned()), "{shells:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_shell_gets_a_script_and_bad_shells_are_usage_errors() {
    for (shell, marker) in [
        ("zsh", "#compdef my-app"),
        ("fish", "complete -c my-app"),
        ("elvish", "my-app"),
        ("powershell", "my-app"),
    ] {
        let output = run(&["completions", shell, "--bin-name", "my-app"]);
        let script = text(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{shell}: {}",
            text(&output.stderr)
        );
        assert!(
            script.contains(marker),
            "{shell}: `{marker}` not in:\n{script}"
        );
        assert!(script.contains("consume-events"), "{shell}:\n{script}");
    }
    let output = run(&["completions", "tcsh"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("bash"),
        "{}",
        text(&output.stderr)
    );
}
