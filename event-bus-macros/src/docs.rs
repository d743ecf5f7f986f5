//! Doc comments, which become Avro `doc` strings.

use syn::{Attribute, Expr, ExprLit, Lit, Meta};

/// The doc comment of an item as one string, or `None` when it has none.
pub fn doc_string(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let joined = lines.join("\n").trim().to_owned();
    (!joined.is_empty()).then_some(joined)
}

/// `Some("text")` or `None` as tokens.
pub fn option_tokens(doc: Option<String>) -> proc_macro2::TokenStream {
    match doc {
        Some(text) => quote::quote!(::core::option::Option::Some(#text)),
        None => quote::quote!(::core::option::Option::None),
    }
}
