//! The catalog as one self-contained HTML page: an index of the event types, then per
//! type its topic, key, senders and receivers in this binary, its fields, and its
//! schema history with what changed in each version. No external assets (the CSS is
//! inline); every piece of text is escaped by `maud`, since schema docs are user text.

use super::fields::flatten;
use super::history::{History, Version};
use super::model::{Catalog, CatalogEvent};
use super::pretty_json;
use super::wire::headers;
use maud::{html, Markup, PreEscaped, DOCTYPE};

const STYLE: &str = include_str!("style.css");

/// The whole page.
pub(crate) fn page(catalog: &Catalog) -> String {
    let topics = catalog.topics().len();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (catalog.title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { (catalog.title) }
                    p.muted {
                        "Version " code { (catalog.version) } " · "
                        (catalog.events.len()) " event type(s) on " (topics) " topic(s)"
                        @if let Some(prefix) = &catalog.topic_prefix {
                            " · topic prefix " code { (prefix) "-" }
                        }
                    }
                }
                main {
                    (index(catalog))
                    @for event in &catalog.events { (event_section(event)) }
                    (wire_section())
                }
                footer {
                    "Written by " code { "event-bus catalog" } " from the event types this \
                     binary registers and the schema history committed under "
                    code { "schemas/" } "."
                }
            }
        }
    }
    .into_string()
}

fn index(catalog: &Catalog) -> Markup {
    html! {
        h2 { "Event types" }
        table {
            thead { tr { th { "Event type" } th { "Topic" } th { "Sent here" } th { "Receivers here" } th { "Versions" } } }
            tbody {
                @for event in &catalog.events {
                    tr {
                        td { a href=(format!("#{}", event.event_type)) { (event.event_type) } }
                        td { code { (event.topic) } }
                        td { (yes_no(event.sent)) }
                        td { (receivers(&event.receivers)) }
                        td { (version_count(&event.history)) }
                    }
                }
            }
        }
    }
}

fn yes_no(yes: bool) -> Markup {
    html! {
        @if yes { span.tag.yes { "yes" } } @else { span.muted { "no" } }
    }
}

fn receivers(names: &[String]) -> Markup {
    html! {
        @if names.is_empty() {
            span.muted { "none" }
        } @else {
            @for (i, name) in names.iter().enumerate() {
                @if i > 0 { ", " }
                code { (name) }
            }
        }
    }
}

fn version_count(history: &History) -> Markup {
    html! {
        @match history {
            History::Missing { .. } => span.tag.warn { "no history" },
            History::Versions { versions, current_recorded } => {
                (versions.len())
                @if !current_recorded { " " span.tag.warn { "not recorded" } }
            }
        }
    }
}

fn event_section(event: &CatalogEvent) -> Markup {
    html! {
        section.event id=(event.event_type) {
            h2 { (event.event_type) }
            @if let Some(doc) = event.doc() { p { (doc) } }
            dl.facts {
                dt { "Topic" } dd { code { (event.topic) } }
                dt { "Value subject" } dd { code { (event.value_subject) } }
                dt { "Key" } dd {
                    @match &event.key {
                        Some(key) => { code { (key.field) } " (" (key.avro_type) "), subject " code { (key.subject) } },
                        None => span.muted { "none: events spread over the partitions" },
                    }
                }
                dt { "Minor version" } dd { (event.minor_version) }
                dt { "Sent by this binary" } dd { (yes_no(event.sent)) }
                dt { "Receivers in this binary" } dd { (receivers(&event.receivers)) }
            }
            h3 { "Fields" }
            (fields_table(event))
            h3 { "Schema history" }
            (history_list(&event.history))
            details {
                summary { "Current Avro schema" }
                pre { (pretty_json(&event.schema_json)) }
            }
        }
    }
}

fn fields_table(event: &CatalogEvent) -> Markup {
    let fields = flatten(&event.schema);
    html! {
        table {
            thead { tr { th { "Field" } th { "Type" } th { "Default" } th { "Description" } } }
            tbody {
                @for field in &fields {
                    tr {
                        td.path { code { (field.path) } }
                        td { code { (field.type_text) } }
                        td { @if let Some(default) = &field.default { code { (default) } } }
                        td { @if let Some(doc) = &field.doc { (doc) } }
                    }
                }
            }
        }
    }
}

fn history_list(history: &History) -> Markup {
    html! {
        @match history {
            History::Missing { dir } => p {
                span.tag.warn { "no history" } " Nothing is committed under "
                code { (dir.display()) } "; run " code { "event-bus schemas generate" }
                " and commit the file."
            },
            History::Versions { versions, current_recorded } => {
                @if !current_recorded {
                    p {
                        span.tag.warn { "not recorded" } " The code's schema is not the latest \
                        stored version, so " code { "event-bus schemas check" } " fails: run "
                        code { "event-bus schemas generate" } " and commit the new file."
                    }
                }
                ol.history { @for version in versions { (version_item(version)) } }
            }
        }
    }
}

fn version_item(version: &Version) -> Markup {
    html! {
        li value=(version.number) {
            strong { "v" (version.number) } " " span.muted { code { (version.path.display()) } }
            @if version.number == 1 {
                " — first version"
            } @else if version.changes.is_empty() {
                " — no field changes (documentation or names only)"
            } @else {
                ul { @for change in &version.changes { li { (change.describe()) } } }
            }
            details {
                summary { "Schema v" (version.number) }
                pre { (pretty_json(&version.json)) }
            }
        }
    }
}

fn wire_section() -> Markup {
    html! {
        section.event id="wire-contract" {
            h2 { "Headers of every event" }
            p {
                "Values are Avro in Confluent framing (magic byte 0, 4-byte schema id, Avro \
                 binary); the metadata travels in CloudEvents headers, UTF-8 text. Consumers \
                 need only " code { "ce_id" } " and " code { "ce_type" } "."
            }
            table {
                thead { tr { th { "Header" } th { "Always written" } th { "Meaning" } } }
                tbody {
                    @for header in headers("<event type>", 0) {
                        tr {
                            td.path { code { (header.name) } }
                            td { (yes_no(header.always)) }
                            td { (header.description) }
                        }
                    }
                }
            }
        }
    }
}
