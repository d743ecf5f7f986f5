//! How the user's crate reaches `event_bus_core`.

use proc_macro2::{Span, TokenStream};
use proc_macro_crate::{crate_name, FoundCrate};
use quote::quote;
use syn::Ident;

/// A path to `event_bus_core`: the crate itself, or the one re-exported by
/// `event_bus_kafka` when only that is a dependency.
pub fn core_path() -> TokenStream {
    match crate_name("event-bus-core") {
        Ok(FoundCrate::Itself) => quote!(::event_bus_core),
        Ok(FoundCrate::Name(name)) => {
            let ident = Ident::new(&name, Span::call_site());
            quote!(::#ident)
        }
        Err(_) => match crate_name("event-bus-kafka") {
            Ok(FoundCrate::Name(name)) => {
                let ident = Ident::new(&name, Span::call_site());
                quote!(::#ident::event_bus_core)
            }
            _ => quote!(::event_bus_core),
        },
    }
}
