use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Fields, Item, LitInt, LitStr};

use crate::Errors;

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let mut version: u32 = 1;
    let mut package: Option<LitStr> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("version") {
            version = meta.value()?.parse::<LitInt>()?.base10_parse()?;
            Ok(())
        } else if meta.path.is_ident("package") {
            package = Some(meta.value()?.parse::<LitStr>()?);
            Ok(())
        } else if meta.path.is_ident("emits") {
            // Accepted for compatibility; events are typed at `emit!`.
            meta.value()?.parse::<syn::Type>()?;
            Ok(())
        } else {
            Err(meta.error(
                "unknown #[app::state] argument; expected `version = N` or `package = \"name\"`",
            ))
        }
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, attr) {
        errors.push(e);
    }

    let item: Item = syn::parse2(item)?;
    let Item::Struct(st) = item else {
        return Err(syn::Error::new_spanned(
            item,
            "#[app::state] must be on a struct with named fields",
        ));
    };
    if !st.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &st.generics,
            "the app state cannot be generic",
        ));
    }
    let Fields::Named(fields) = &st.fields else {
        errors.push(syn::Error::new_spanned(
            &st,
            "#[app::state] must be on a struct with named fields",
        ));
        return Ok(errors.with_item(quote!(#st)));
    };
    if errors.any() {
        return Ok(errors.with_item(quote!(#st)));
    }

    let name = &st.ident;
    let package = match &package {
        Some(p) => quote!(#p),
        None => quote!(::core::env!("CARGO_PKG_NAME")),
    };
    let mut asserts = Vec::new();
    let mut loads = Vec::new();
    let mut frozen = Vec::new();
    let mut schema = Vec::new();
    let mut stores = Vec::new();
    let mut authored = Vec::new();
    let mut pending = Vec::new();
    let mut rewrites = Vec::new();
    for f in &fields.named {
        let Some(ident) = &f.ident else { continue };
        let ty = &f.ty;
        let key = ident.to_string();
        asserts.push(quote_spanned! {ty.span()=> __assert_crdt::<#ty>(); });
        loads.push(quote! {
            #ident: <#ty as ::mero_sdk::__private::Crdt>::__attach(::mero_sdk::__private::Location::Root(#key))
        });
        frozen.push(quote! {
            #ident: <#ty as ::mero_sdk::__private::Crdt>::__attach(::mero_sdk::__private::Location::Frozen(#key))
        });
        // The type as written, without spacing: what the host compares
        // between two versions' layouts.
        let kind: String = quote!(#ty).to_string().split_whitespace().collect();
        schema.push(quote! { (#key, #kind) });
        authored.push(quote! { <#ty as ::mero_sdk::__private::Crdt>::AUTHORED });
        pending
            .push(quote! { <#ty as ::mero_sdk::__private::Crdt>::__pending_mine(&self.#ident)? });
        rewrites.push(
            quote! { <#ty as ::mero_sdk::__private::Crdt>::__rewrite_mine(&mut self.#ident)? },
        );
        stores.push(quote! {
            <#ty as ::mero_sdk::__private::Crdt>::__store(self.#ident, ::mero_sdk::__private::Location::Root(#key))?;
        });
    }

    Ok(quote! {
        #st

        const _: () = {
            fn __assert_crdt<T: ::mero_sdk::__private::Crdt>() {}
            #[allow(dead_code)]
            fn __check_fields() {
                #(#asserts)*
            }

            impl ::mero_sdk::__private::AppState for #name {
                const STATE_VERSION: u32 = #version;
                const PACKAGE: &'static str = #package;
                const VERSION: &'static str = ::core::env!("CARGO_PKG_VERSION");
                const SCHEMA: &'static [(&'static str, &'static str)] = &[#(#schema),*];

                fn __load() -> Self {
                    #name { #(#loads),* }
                }

                fn __load_frozen() -> Self {
                    #name { #(#frozen),* }
                }

                fn __store(self) -> ::mero_sdk::Result<()> {
                    #(#stores)*
                    ::core::result::Result::Ok(())
                }

                const AUTHORED: bool = false #(|| #authored)*;

                fn __count_my_pending(&self) -> ::mero_sdk::Result<u64> {
                    ::core::result::Result::Ok(0 #(+ #pending)*)
                }

                fn __migrate_my_entries(&mut self) -> ::mero_sdk::Result<u64> {
                    ::core::result::Result::Ok(0 #(+ #rewrites)*)
                }
            }
        };
    })
}
