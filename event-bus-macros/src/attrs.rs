//! Parsing `#[event(...)]`.

use syn::{DeriveInput, LitInt, LitStr};

use crate::topic_attrs::{self, TopicSettingsAttr};

/// What `#[event(...)]` says about an event type.
pub struct EventAttrs {
    pub event_type: LitStr,
    pub topic: LitStr,
    pub key: Option<LitStr>,
    pub minor_version: u32,
    pub topic_settings: Option<TopicSettingsAttr>,
}

const USAGE: &str = "expected #[event(type = \"org.example.domain.subject.action.v1\", topic = \"topic-name\", key = \"field.path\", minor_version = 0, topic_settings(partitions = 6))]; `key`, `minor_version` and `topic_settings` are optional";

pub fn parse(input: &DeriveInput) -> syn::Result<EventAttrs> {
    let mut event_type = None;
    let mut topic = None;
    let mut key = None;
    let mut minor_version = 0;
    let mut topic_settings = None;
    let mut last_attr = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("event")) {
        last_attr = Some(attr);
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("type") {
                event_type = Some(meta.value()?.parse::<LitStr>()?);
            } else if meta.path.is_ident("topic") {
                topic = Some(meta.value()?.parse::<LitStr>()?);
            } else if meta.path.is_ident("key") {
                key = Some(meta.value()?.parse::<LitStr>()?);
            } else if meta.path.is_ident("minor_version") {
                minor_version = meta.value()?.parse::<LitInt>()?.base10_parse()?;
            } else if meta.path.is_ident("topic_settings") {
                if topic_settings.is_some() {
                    return Err(meta.error("`topic_settings` is given twice: put every setting in one topic_settings(...)"));
                }
                topic_settings = Some(topic_attrs::parse(&meta)?);
            } else {
                let name = path_name(&meta.path);
                return Err(meta.error(format!("unknown #[event] setting `{name}`; {USAGE}")));
            }
            Ok(())
        })?;
    }
    let Some(last_attr) = last_attr else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            format!("#[derive(Event)] needs an #[event(...)] attribute: {USAGE}"),
        ));
    };
    let event_type = event_type.ok_or_else(|| {
        syn::Error::new_spanned(
            last_attr,
            format!("#[event] is missing `type`: add type = \"org.example.domain.subject.action.v1\", the event type name sent as `ce_type`; {USAGE}"),
        )
    })?;
    let topic = topic.ok_or_else(|| {
        syn::Error::new_spanned(
            last_attr,
            format!("#[event] is missing `topic`: add topic = \"topic-name\", the Kafka topic events of this type go to (before any prefix); {USAGE}"),
        )
    })?;
    if topic.value().trim().is_empty() {
        return Err(syn::Error::new_spanned(&topic, "`topic` must not be empty"));
    }
    Ok(EventAttrs {
        event_type,
        topic,
        key,
        minor_version,
        topic_settings,
    })
}

/// A setting's name as written, e.g. `partition_key` or `serde::rename`.
pub fn path_name(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}
