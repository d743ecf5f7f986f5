//! The `AvroBinary` impls the derives generate: records and enums written and read
//! straight as Avro binary, or through serde when a serde attribute changes the type's
//! serde form in a way the fields alone do not show.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, DeriveInput, FieldsNamed, Ident, LitStr, Token, Variant};

/// Whether serde writes the type as its fields (or variants) alone say: no serde
/// attribute on it, its fields or its variants other than the ones that change
/// nothing on the Avro wire (`default`, `alias`, `deny_unknown_fields`, `crate`) and
/// `with = "...avro::bytes"` on a `Vec<u8>`.
pub fn serde_form_is_plain(input: &DeriveInput) -> bool {
    let container = plain(&input.attrs, |meta| {
        meta.path.is_ident("deny_unknown_fields") || meta.path.is_ident("crate")
    });
    let members = match &input.data {
        syn::Data::Struct(data) => data.fields.iter().all(|field| {
            let ty = &field.ty;
            let is_byte_vec = quote!(#ty).to_string().replace(' ', "") == "Vec<u8>";
            plain(&field.attrs, |meta| {
                if meta.path.is_ident("with") {
                    return is_byte_vec && value_ends_with(meta, "avro::bytes");
                }
                meta.path.is_ident("default") || meta.path.is_ident("alias")
            })
        }),
        syn::Data::Enum(data) => data
            .variants
            .iter()
            .all(|v| plain(&v.attrs, |meta| meta.path.is_ident("alias"))),
        syn::Data::Union(_) => false,
    };
    container && members
}

/// Whether every item of every `#[serde(...)]` among `attrs` passes `allowed`.
fn plain(attrs: &[Attribute], allowed: impl Fn(&syn::meta::ParseNestedMeta) -> bool) -> bool {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("serde"))
        .all(|attr| {
            attr.parse_nested_meta(|meta| {
                if !allowed(&meta) {
                    return Err(meta.error("changes the serde form"));
                }
                if meta.input.peek(Token![=]) {
                    meta.value()?.parse::<syn::Expr>()?;
                }
                Ok(())
            })
            .is_ok()
        })
}

fn value_ends_with(meta: &syn::meta::ParseNestedMeta, suffix: &str) -> bool {
    let fork = meta.input.fork();
    fork.parse::<Token![=]>()
        .and_then(|_| fork.parse::<LitStr>())
        .is_ok_and(|path| path.value().replace(' ', "").ends_with(suffix))
}

/// `AvroBinary` for a record: its fields in order, one level of nesting.
pub fn record(ident: &Ident, fields: &FieldsNamed, plain: bool, core: &TokenStream) -> TokenStream {
    let binary = quote!(#core::avro::binary);
    // Each field's part is spanned at its type, so an unsupported type is reported
    // once, where it is written.
    let mut min_bytes = quote!(0);
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    for field in &fields.named {
        let (Some(name), ty) = (&field.ident, &field.ty) else {
            continue;
        };
        min_bytes.extend(quote_spanned! {ty.span()=> + <#ty as #binary::AvroBinary>::MIN_BYTES });
        writes.push(quote_spanned! {ty.span()=> <#ty as #binary::AvroBinary>::write_avro(&self.#name, out)?; });
        reads.push(
            quote_spanned! {ty.span()=> #name: <#ty as #binary::AvroBinary>::read_avro(input)?, },
        );
    }
    if !plain {
        return through_serde(ident, &min_bytes, core);
    }
    quote! {
        impl #binary::AvroBinary for #ident {
            const MIN_BYTES: usize = #min_bytes;

            fn write_avro(&self, out: &mut ::std::vec::Vec<u8>) -> ::std::result::Result<(), #core::codec::CodecError> {
                #( #writes )*
                ::std::result::Result::Ok(())
            }

            fn read_avro(input: &mut #binary::AvroReader<'_>) -> ::std::result::Result<Self, #binary::ReadError> {
                input.enter()?;
                let value = Self {
                    #( #reads )*
                };
                input.leave();
                ::std::result::Result::Ok(value)
            }
        }
    }
}

/// `AvroBinary` for a unit-only enum: the variant's index in declaration order, the
/// order of the schema's symbols.
pub fn enumeration(
    ident: &Ident,
    variants: &Punctuated<Variant, Token![,]>,
    plain: bool,
    core: &TokenStream,
) -> TokenStream {
    let binary = quote!(#core::avro::binary);
    if !plain {
        return through_serde(ident, &quote!(1), core);
    }
    let count = variants.len();
    let names: Vec<_> = variants.iter().map(|v| &v.ident).collect();
    let indexes: Vec<i64> = (0..count as i64).collect();
    let positions: Vec<usize> = (0..count).collect();
    let read = match names.split_last() {
        Some((last, _)) => quote! {
            ::std::result::Result::Ok(match input.read_enum_index(#count)? {
                #( #positions => Self::#names, )*
                _ => Self::#last,
            })
        },
        None => quote! {
            input.read_enum_index(0)?;
            ::std::result::Result::Err(#binary::ReadError::invalid("the enum has no symbols"))
        },
    };
    quote! {
        impl #binary::AvroBinary for #ident {
            const MIN_BYTES: usize = 1;

            fn write_avro(&self, out: &mut ::std::vec::Vec<u8>) -> ::std::result::Result<(), #core::codec::CodecError> {
                let index: i64 = match *self { #( Self::#names => #indexes, )* };
                #binary::write_long(out, index);
                ::std::result::Result::Ok(())
            }

            fn read_avro(input: &mut #binary::AvroReader<'_>) -> ::std::result::Result<Self, #binary::ReadError> {
                #read
            }
        }
    }
}

/// `AvroBinary` through serde and apache-avro, with the type's own schema.
fn through_serde(ident: &Ident, min_bytes: &TokenStream, core: &TokenStream) -> TokenStream {
    let binary = quote!(#core::avro::binary);
    quote! {
        impl #binary::AvroBinary for #ident {
            const MIN_BYTES: usize = #min_bytes;

            fn write_avro(&self, out: &mut ::std::vec::Vec<u8>) -> ::std::result::Result<(), #core::codec::CodecError> {
                #binary::SerdePart::of::<Self>()?.write(self, out)
            }

            fn read_avro(input: &mut #binary::AvroReader<'_>) -> ::std::result::Result<Self, #binary::ReadError> {
                #binary::SerdePart::of::<Self>()
                    .map_err(|e| #binary::ReadError::Codec(::std::boxed::Box::new(e)))?
                    .read(input)
            }
        }
    }
}
