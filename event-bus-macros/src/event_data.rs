//! `#[derive(EventData)]`: nested records and enums.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, FieldsNamed};

use crate::binary;
use crate::crate_path::core_path;
use crate::docs::{doc_string, option_tokens};

pub fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    reject_generics(input)?;
    let core = core_path();
    let ident = &input.ident;
    let name = ident.to_string();
    let doc = option_tokens(doc_string(&input.attrs));
    let plain = binary::serde_form_is_plain(input);
    let (body, binary_impl) = match &input.data {
        Data::Struct(data) => {
            let fields = named_fields(&data.fields, input)?;
            let field_schemas = field_schemas(fields, &core)?;
            let schema = quote! {
                #core::avro::record(#name, #doc, names, |names| ::std::vec![#(#field_schemas),*])
            };
            (schema, binary::record(ident, fields, plain, &core))
        }
        Data::Enum(data) => {
            let mut symbols = Vec::new();
            for variant in &data.variants {
                if !matches!(variant.fields, Fields::Unit) {
                    return Err(syn::Error::new_spanned(
                        variant,
                        format!(
                            "EventData enums map to Avro enums, so every variant must be a unit variant, but `{}` has fields: remove them, or put the data in a #[derive(EventData)] struct field next to the enum",
                            variant.ident
                        ),
                    ));
                }
                symbols.push(variant.ident.to_string());
            }
            let schema = quote! { #core::avro::enumeration(#name, #doc, &[#(#symbols),*], names) };
            (
                schema,
                binary::enumeration(ident, &data.variants, plain, &core),
            )
        }
        Data::Union(_) => {
            return Err(syn::Error::new_spanned(
                ident,
                "EventData supports structs with named fields and unit-only enums, not unions",
            ));
        }
    };
    Ok(quote! {
        impl #core::avro::AvroType for #ident {
            fn avro_schema(names: &mut #core::avro::SchemaNames) -> #core::__private::serde_json::Value {
                #body
            }
        }

        #binary_impl
    })
}

pub fn reject_generics(input: &DeriveInput) -> syn::Result<()> {
    if input.generics.params.is_empty() {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(
            &input.generics,
            "event types cannot be generic: an Avro schema names one concrete record",
        ))
    }
}

pub fn named_fields<'a>(fields: &'a Fields, input: &DeriveInput) -> syn::Result<&'a FieldsNamed> {
    let kind = match fields {
        Fields::Named(named) => return Ok(named),
        Fields::Unnamed(_) => "a tuple struct",
        Fields::Unit => "a unit struct",
    };
    Err(syn::Error::new_spanned(
        &input.ident,
        format!(
            "`{ident}` is {kind}, but events and event data must be structs with named fields, each of which becomes an Avro record field: write `struct {ident} {{ field_name: Type, ... }}`",
            ident = input.ident
        ),
    ))
}

/// `avro::field::<T>("name", doc, names)` for every field, each spanned at its type
/// so an unsupported type is reported where it is written.
pub fn field_schemas(fields: &FieldsNamed, core: &TokenStream) -> syn::Result<Vec<TokenStream>> {
    fields
        .named
        .iter()
        .map(|field| {
            check_bytes_field(field)?;
            let ty = &field.ty;
            let name = field
                .ident
                .as_ref()
                .map(|i| i.to_string().trim_start_matches("r#").to_owned())
                .unwrap_or_default();
            let doc = option_tokens(doc_string(&field.attrs));
            Ok(quote_spanned! {ty.span()=> #core::avro::field::<#ty>(#name, #doc, names) })
        })
        .collect()
}

/// A `Vec<u8>` field must be written as Avro `bytes`, which serde does only when told.
fn check_bytes_field(field: &syn::Field) -> syn::Result<()> {
    let ty = &field.ty;
    let is_byte_vec = quote::quote!(#ty).to_string().replace(' ', "") == "Vec<u8>";
    let has_serde_with = field.attrs.iter().any(|a| {
        a.path().is_ident("serde") && {
            let text = quote::quote!(#a).to_string();
            text.contains("with")
        }
    });
    if is_byte_vec && !has_serde_with {
        return Err(syn::Error::new_spanned(
            ty,
            "a Vec<u8> field is Avro `bytes`: add #[serde(with = \"event_bus_core::avro::bytes\")] to the field",
        ));
    }
    Ok(())
}
