use proc_macro2::TokenStream;
use quote::quote;
use syn::{Fields, Item};

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(
            attr,
            "#[app::event] takes no arguments",
        ));
    }
    let item: Item = syn::parse2(item)?;
    let Item::Enum(en) = item else {
        return Err(syn::Error::new_spanned(
            item,
            "#[app::event] must be on an enum; each variant is an event kind",
        ));
    };
    let name = &en.ident;
    let (impl_generics, ty_generics, where_clause) = en.generics.split_for_impl();
    let mut kinds = Vec::new();
    let mut datas = Vec::new();
    for v in &en.variants {
        let vname = &v.ident;
        let kind = vname.to_string();
        match &v.fields {
            Fields::Named(f) => {
                let idents: Vec<_> = f.named.iter().filter_map(|f| f.ident.as_ref()).collect();
                let keys: Vec<String> = idents.iter().map(|i| i.to_string()).collect();
                kinds.push(quote! { Self::#vname { .. } => #kind });
                datas.push(quote! {
                    Self::#vname { #(#idents),* } => {
                        let mut __m = ::mero_sdk::__private::JsonMap::new();
                        #( __m.insert(#keys.into(), ::mero_sdk::__private::to_json(#idents)); )*
                        ::mero_sdk::__private::JsonValue::Object(__m)
                    }
                });
            }
            Fields::Unnamed(f) => {
                let idents: Vec<_> = (0..f.unnamed.len())
                    .map(|i| quote::format_ident!("__f{}", i))
                    .collect();
                kinds.push(quote! { Self::#vname(..) => #kind });
                let value = if idents.len() == 1 {
                    quote! { ::mero_sdk::__private::to_json(__f0) }
                } else {
                    quote! { ::mero_sdk::__private::JsonValue::Array(vec![#(::mero_sdk::__private::to_json(#idents)),*]) }
                };
                datas.push(quote! { Self::#vname(#(#idents),*) => #value });
            }
            Fields::Unit => {
                kinds.push(quote! { Self::#vname => #kind });
                datas.push(quote! { Self::#vname => ::mero_sdk::__private::JsonValue::Null });
            }
        }
    }
    Ok(quote! {
        #en

        impl #impl_generics ::mero_sdk::AppEvent for #name #ty_generics #where_clause {
            fn kind(&self) -> &'static str {
                match self { #(#kinds),* }
            }

            fn data(&self) -> ::std::vec::Vec<u8> {
                let __v = match self { #(#datas),* };
                ::mero_sdk::serde_json::to_vec(&__v).unwrap_or_default()
            }
        }
    })
}
