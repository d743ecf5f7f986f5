//! `#[derive(Event)]`.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::{Data, DeriveInput, FieldsNamed, Ident, LitStr};

use crate::attrs;
use crate::binary;
use crate::crate_path::core_path;
use crate::docs::{doc_string, option_tokens};
use crate::event_data::{field_schemas, named_fields, reject_generics};
use crate::topic_attrs;

pub fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    reject_generics(input)?;
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(Event)] needs a struct with named fields; the struct becomes the Avro record `CloudEvent`",
        ));
    };
    let fields = named_fields(&data.fields, input)?;
    let attrs = attrs::parse(input)?;
    let core = core_path();
    let ident = &input.ident;
    let event_type = &attrs.event_type;
    let topic = &attrs.topic;
    let minor_version = attrs.minor_version;
    let doc = option_tokens(doc_string(&input.attrs));
    let field_schemas = field_schemas(fields, &core)?;
    let key = key_tokens(attrs.key.as_ref(), fields, &core)?;
    let topic_settings = match &attrs.topic_settings {
        Some(settings) => {
            reject_keyless_compaction(settings, attrs.key.is_some())?;
            topic_attrs::tokens(settings, &core)
        }
        None => TokenStream::new(),
    };
    let invalid_name_message = format!(
        "event type `{}` is malformed: use {{reverse-dns}}.{{domain}}.{{subject}}.{{action}}.v{{major}} in lowercase, e.g. org.example.learning.course.enrollment.created.v1",
        event_type.value()
    )
    .replace('{', "{{")
    .replace('}', "}}");
    let KeyTokens {
        key_field,
        key_fn,
        key_schema_fn,
    } = key;
    // Spanned at the `type` literal, so a malformed name is reported where it is written.
    let BinaryTokens {
        record: binary_record,
        methods: binary_methods,
    } = binary_tokens(input, fields, event_type, &core);
    let name_check = quote_spanned! {event_type.span()=>
        const _: () = ::core::assert!(#core::event_type::is_valid(#event_type), #invalid_name_message);
    };
    Ok(quote! {
        #name_check

        impl #core::Event for #ident {
            const EVENT_TYPE: &'static str = #event_type;
            const TOPIC: &'static str = #topic;
            const KEY_FIELD: ::core::option::Option<&'static str> = #key_field;
            const MINOR_VERSION: u32 = #minor_version;
            #topic_settings

            fn schema_json() -> #core::__private::serde_json::Value {
                #core::avro::cloud_event_record(#event_type, #doc, |names| ::std::vec![#(#field_schemas),*])
            }

            fn schema() -> &'static #core::apache_avro::Schema {
                static SCHEMA: ::std::sync::OnceLock<#core::apache_avro::Schema> = ::std::sync::OnceLock::new();
                SCHEMA.get_or_init(|| {
                    #core::apache_avro::Schema::parse(&<Self as #core::Event>::schema_json())
                        .expect("a derived event schema is valid Avro; this is a signal-bridge bug, please report it")
                })
            }

            fn prepared_schema() -> ::std::result::Result<&'static #core::codec::PreparedSchema, #core::codec::CodecError> {
                static PREPARED: ::std::sync::OnceLock<#core::codec::PreparedSchema> = ::std::sync::OnceLock::new();
                ::std::result::Result::Ok(PREPARED.get_or_init(|| {
                    #core::codec::PreparedSchema::prepare_or_panic(<Self as #core::Event>::schema())
                }))
            }

            #key_fn
            #key_schema_fn
            #binary_methods
        }

        #binary_record

        #core::__private::inventory::submit! {
            #core::EventRegistration::of::<#ident>()
        }
    })
}

/// The `AvroBinary` impl of the event's record and the `Event` methods that use it;
/// nothing when the struct's serde form is not plain (the defaults, through serde and
/// apache-avro, then apply).
struct BinaryTokens {
    record: Option<TokenStream>,
    methods: Option<TokenStream>,
}

fn binary_tokens(
    input: &DeriveInput,
    fields: &FieldsNamed,
    event_type: &LitStr,
    core: &TokenStream,
) -> BinaryTokens {
    if !binary::serde_form_is_plain(input) {
        return BinaryTokens {
            record: None,
            methods: None,
        };
    }
    let ident = &input.ident;
    // The writer schema's full name, as the apache-avro path names it in errors.
    let schema_name = format!("{}.CloudEvent", event_type.value());
    let b = quote!(#core::avro::binary);
    let result = quote!(::std::result::Result);
    let error = quote!(#core::codec::CodecError);
    BinaryTokens {
        record: Some(binary::record(ident, fields, true, core)),
        methods: Some(quote! {
            fn to_avro_datum(&self) -> #result<::std::vec::Vec<u8>, #error> {
                static HINT: #b::SizeHint = #b::SizeHint::new();
                #b::write_datum(self, &HINT)
            }

            fn to_avro_framed(&self, schema_id: u32) -> #result<::std::vec::Vec<u8>, #error> {
                static HINT: #b::SizeHint = #b::SizeHint::new();
                #b::write_framed(self, schema_id, &HINT)
            }

            fn write_avro_framed(&self, schema_id: u32, out: &mut ::std::vec::Vec<u8>) -> #result<(), #error> {
                #b::write_framed_into(self, schema_id, out)
            }

            fn from_own_avro_datum(bytes: &[u8]) -> #result<Self, #error> {
                #b::read_datum(bytes, #schema_name)
            }
        }),
    }
}

/// Kafka refuses records without a key on a compacted topic.
fn reject_keyless_compaction(
    settings: &topic_attrs::TopicSettingsAttr,
    has_key: bool,
) -> syn::Result<()> {
    match topic_attrs::compacted(settings) {
        Some(entry) if !has_key => Err(syn::Error::new(
            entry.span,
            "a compacted topic (\"cleanup.policy\" = \"compact\") keeps the latest record per key and refuses records without one, but this event type has no key: add key = \"field.path\" to #[event(...)], or use \"cleanup.policy\" = \"delete\"",
        )),
        _ => Ok(()),
    }
}

struct KeyTokens {
    key_field: TokenStream,
    key_fn: TokenStream,
    key_schema_fn: TokenStream,
}

fn key_tokens(
    key: Option<&LitStr>,
    fields: &FieldsNamed,
    core: &TokenStream,
) -> syn::Result<KeyTokens> {
    let Some(key) = key else {
        return Ok(KeyTokens {
            key_field: quote!(::core::option::Option::None),
            key_fn: quote! {
                fn key(&self) -> ::core::option::Option<#core::EventKey> { ::core::option::Option::None }
            },
            key_schema_fn: quote! {
                fn key_schema_json() -> ::core::option::Option<#core::__private::serde_json::Value> { ::core::option::Option::None }
            },
        });
    };
    let path = key.value();
    let segments = key_segments(key, &path, fields)?;
    let core = &respan(core.clone(), key.span());
    // The bodies are spanned at the `key` literal, so an unsupported key type is
    // reported at the path that reaches it.
    Ok(KeyTokens {
        key_field: quote!(::core::option::Option::Some(#key)),
        key_fn: quote_spanned! {key.span()=>
            fn key(&self) -> ::core::option::Option<#core::EventKey> {
                #core::key::KeyField::to_event_key(&self.#(#segments).*)
            }
        },
        key_schema_fn: quote_spanned! {key.span()=>
            fn key_schema_json() -> ::core::option::Option<#core::__private::serde_json::Value> {
                ::core::option::Option::Some(#core::key::key_schema_of(#key, |event: &Self| &event.#(#segments).*))
            }
        },
    })
}

/// The key path's segments as identifiers spanned at the attribute, after checking
/// the first one names a field of the struct.
fn key_segments(key: &LitStr, path: &str, fields: &FieldsNamed) -> syn::Result<Vec<Ident>> {
    let mut segments = Vec::new();
    for segment in path.split('.') {
        let ident = syn::parse_str::<Ident>(segment).map_err(|_| {
            syn::Error::new_spanned(key, format!("key path `{path}` has `{segment}`, which is not a field name; write the path to the key field with dots, e.g. \"enrollment.user.id\""))
        })?;
        segments.push(Ident::new(segment, key.span()));
        let _ = ident;
    }
    let first = path.split('.').next().unwrap_or_default();
    let names: Vec<String> = fields
        .named
        .iter()
        .filter_map(|f| f.ident.as_ref().map(ToString::to_string))
        .collect();
    if !names.iter().any(|n| n == first) {
        return Err(syn::Error::new_spanned(
            key,
            format!("key path `{path}` starts with `{first}`, but the struct has no such field; its fields are: {}", names.join(", ")),
        ));
    }
    Ok(segments)
}

/// `tokens` with every span set to `span`, so errors in code built from them point there.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut inner = Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}
