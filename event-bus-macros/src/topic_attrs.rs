//! Parsing `topic_settings(...)` inside `#[event(...)]`, and the tokens of the
//! `TOPIC_SETTINGS` constant it becomes.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::meta::ParseNestedMeta;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Lit, LitInt, LitStr, Token};

pub const USAGE: &str = "write topic_settings(partitions = 6, replication_factor = 3, config(\"cleanup.policy\" = \"delete\", \"retention.ms\" = 604800000)); every part is optional";

/// What `topic_settings(...)` declares.
pub struct TopicSettingsAttr {
    pub partitions: Option<u32>,
    pub replication_factor: Option<(u16, Span)>,
    pub configs: Vec<ConfigEntry>,
}

/// One `"name" = value` of `config(...)`.
pub struct ConfigEntry {
    pub name: LitStr,
    pub value: String,
    pub span: Span,
}

/// Parses the `topic_settings(...)` that `meta` is at.
pub fn parse(meta: &ParseNestedMeta<'_>) -> syn::Result<TopicSettingsAttr> {
    if !meta.input.peek(syn::token::Paren) {
        return Err(meta.error(format!(
            "`topic_settings` takes its settings in parentheses: {USAGE}"
        )));
    }
    let mut settings = TopicSettingsAttr {
        partitions: None,
        replication_factor: None,
        configs: Vec::new(),
    };
    meta.parse_nested_meta(|inner| {
        if inner.path.is_ident("partitions") {
            let lit: LitInt = inner.value()?.parse()?;
            settings.partitions = Some(positive(&lit, "partitions", i32::MAX as u64)?);
        } else if inner.path.is_ident("replication_factor") {
            let lit: LitInt = inner.value()?.parse()?;
            let value = positive(&lit, "replication_factor", i16::MAX as u64)?;
            settings.replication_factor = Some((value as u16, lit.span()));
        } else if inner.path.is_ident("config") {
            let content;
            syn::parenthesized!(content in inner.input);
            let entries = Punctuated::<ConfigEntry, Token![,]>::parse_terminated(&content)?;
            for entry in entries {
                if settings
                    .configs
                    .iter()
                    .any(|e| e.name.value() == entry.name.value())
                {
                    return Err(syn::Error::new_spanned(
                        &entry.name,
                        format!(
                            "topic config \"{}\" is declared twice: keep one",
                            entry.name.value()
                        ),
                    ));
                }
                settings.configs.push(entry);
            }
        } else {
            let name = crate::attrs::path_name(&inner.path);
            return Err(inner.error(format!("unknown topic setting `{name}`; {USAGE}")));
        }
        Ok(())
    })?;
    check_min_insync(&settings)?;
    Ok(settings)
}

/// `lit` as a whole number in `1..=max`.
fn positive(lit: &LitInt, name: &str, max: u64) -> syn::Result<u32> {
    let value: u64 = lit.base10_parse().map_err(|_| {
        syn::Error::new_spanned(
            lit,
            format!("`{name}` must be a whole number, e.g. {name} = 3"),
        )
    })?;
    if value == 0 || value > max {
        return Err(syn::Error::new_spanned(
            lit,
            format!("`{name}` must be between 1 and {max}, e.g. {name} = 3"),
        ));
    }
    Ok(value as u32)
}

/// A topic whose `min.insync.replicas` exceeds its replication factor refuses every
/// `acks=all` write, which is how the SDK's producers write.
fn check_min_insync(settings: &TopicSettingsAttr) -> syn::Result<()> {
    let Some((replication, _)) = settings.replication_factor else {
        return Ok(());
    };
    let Some(entry) = settings
        .configs
        .iter()
        .find(|e| e.name.value() == "min.insync.replicas")
    else {
        return Ok(());
    };
    match entry.value.parse::<u32>() {
        Ok(min) if min > u32::from(replication) => Err(syn::Error::new(
            entry.span,
            format!(
                "\"min.insync.replicas\" = {min} is more than replication_factor = {replication}: \
                 the topic would refuse every write with acks=all; use at most {replication} \
                 (e.g. replication_factor - 1, so one broker may be down)"
            ),
        )),
        _ => Ok(()),
    }
}

/// Whether the settings ask for a compacted topic, which refuses records without a key.
pub fn compacted(settings: &TopicSettingsAttr) -> Option<&ConfigEntry> {
    settings.configs.iter().find(|e| {
        e.name.value() == "cleanup.policy" && e.value.split(',').any(|p| p.trim() == "compact")
    })
}

impl Parse for ConfigEntry {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(syn::Ident) {
            let ident: syn::Ident = input.parse()?;
            return Err(syn::Error::new_spanned(
                &ident,
                format!("write topic config names as strings, with dots: config(\"{}\" = …), e.g. config(\"retention.ms\" = 604800000)", ident.to_string().replace('_', ".")),
            ));
        }
        let name: LitStr = input.parse()?;
        check_name(&name)?;
        input.parse::<Token![=]>()?;
        let negative = input.parse::<Option<Token![-]>>()?.is_some();
        let lit: Lit = input.parse()?;
        let value = match (&lit, negative) {
            (Lit::Int(int), _) => {
                let digits = int.base10_digits();
                if negative { format!("-{digits}") } else { digits.to_owned() }
            }
            (Lit::Str(text), false) if !text.value().trim().is_empty() => text.value(),
            (Lit::Bool(flag), false) => flag.value.to_string(),
            _ => {
                return Err(syn::Error::new_spanned(
                    &lit,
                    format!(
                        "the value of topic config \"{}\" must be a non-empty string, a whole number or true/false, e.g. \"{}\" = \"delete\"",
                        name.value(),
                        name.value()
                    ),
                ))
            }
        };
        let span = name.span();
        Ok(ConfigEntry { name, value, span })
    }
}

/// Kafka's topic config names are lowercase words joined by dots.
fn check_name(name: &LitStr) -> syn::Result<()> {
    let text = name.value();
    let valid = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(
            name,
            format!("\"{text}\" is not a Kafka topic config name: use the broker's name, lowercase words joined by dots, e.g. \"retention.ms\" or \"cleanup.policy\""),
        ))
    }
}

/// The `TOPIC_SETTINGS` constant of the `Event` impl.
pub fn tokens(settings: &TopicSettingsAttr, core: &TokenStream) -> TokenStream {
    let option = |value: Option<TokenStream>| match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    };
    let partitions = option(settings.partitions.map(|p| quote!(#p)));
    let replication = option(settings.replication_factor.map(|(r, _)| quote!(#r)));
    let configs = settings.configs.iter().map(|entry| {
        let name = &entry.name;
        let value = &entry.value;
        quote!((#name, #value))
    });
    quote! {
        const TOPIC_SETTINGS: #core::topic_settings::TopicSettings = #core::topic_settings::TopicSettings {
            partitions: #partitions,
            replication_factor: #replication,
            configs: &[#(#configs),*],
        };
    }
}
