use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{
    Attribute, FnArg, GenericArgument, ImplItem, ImplItemFn, ItemImpl, LitInt, Pat, PathArguments,
    ReturnType, Type, Visibility,
};

use crate::Errors;

#[derive(Clone, Copy, PartialEq)]
enum Receiver {
    None,
    Ref,
    Mut,
}

enum Output {
    Unit,
    Value,
    /// `Result<T>` spelled with one argument: an `app::Result`.
    AppResult,
    /// `Result<T, E>`.
    Result,
}

struct Method {
    name: syn::Ident,
    receiver: Receiver,
    params: Vec<(syn::Ident, Type, bool)>,
    output: Output,
}

enum Marker {
    Init,
    View,
    Migrate(u32),
    Check(u32),
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    if !attr.is_empty() {
        errors.push(syn::Error::new_spanned(
            &attr,
            "#[app::logic] takes no arguments",
        ));
    }
    let mut imp: ItemImpl = syn::parse2(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            "#[app::logic] must be on an inherent impl block of the state",
        )
    })?;
    if let Some((_, path, _)) = &imp.trait_ {
        errors.push(syn::Error::new_spanned(
            path,
            "#[app::logic] must be on an inherent impl block, not a trait impl",
        ));
    }
    if !imp.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &imp.generics,
            "the app state cannot be generic",
        ));
    }
    let self_ty = imp.self_ty.clone();

    let mut init: Option<Method> = None;
    let mut calls: Vec<Method> = Vec::new();
    let mut migrations: Vec<(u32, Method)> = Vec::new();
    // (from version, method, whether it returns a bare `bool`)
    let mut checks: Vec<(u32, Method, bool)> = Vec::new();

    for item in &mut imp.items {
        let ImplItem::Fn(f) = item else { continue };
        let markers = take_markers(&mut f.attrs, &mut errors);
        let is_pub = matches!(f.vis, Visibility::Public(_));
        let name = f.sig.ident.to_string();
        let is_init = markers.iter().any(|m| matches!(m, Marker::Init));
        let is_view = markers.iter().any(|m| matches!(m, Marker::View));
        let migrate_from = markers.iter().find_map(|m| match m {
            Marker::Migrate(v) => Some(*v),
            _ => None,
        });
        let check_from = markers.iter().find_map(|m| match m {
            Marker::Check(v) => Some(*v),
            _ => None,
        });
        let returns_bool = matches!(&f.sig.output, ReturnType::Type(_, t) if matches!(&**t, Type::Path(p) if p.path.is_ident("bool")));
        if !is_pub && !markers.is_empty() {
            errors.push(syn::Error::new_spanned(
                &f.sig.ident,
                "methods marked with #[app::...] must be `pub`",
            ));
            continue;
        }
        if !is_pub {
            continue;
        }
        let Some(method) = method(f, &mut errors) else {
            continue;
        };
        if name.starts_with("__") {
            errors.push(syn::Error::new_spanned(
                &f.sig.ident,
                "method names starting with `__` are reserved",
            ));
            continue;
        }
        if is_init {
            if method.receiver != Receiver::None {
                errors.push(syn::Error::new_spanned(&f.sig, "#[app::init] must be an associated function returning the state, without `self`"));
            } else if init.is_some() {
                errors.push(syn::Error::new_spanned(
                    &f.sig.ident,
                    "only one method can be #[app::init]",
                ));
            } else {
                init = Some(method);
            }
            continue;
        }
        if is_view && method.receiver != Receiver::Ref {
            errors.push(syn::Error::new_spanned(
                &f.sig,
                "#[app::view] methods take `&self`: a view cannot change state",
            ));
            continue;
        }
        let old_state_only = method.params.len() <= 1 && method.params.iter().all(|p| p.2);
        if let Some(from) = migrate_from {
            if method.receiver != Receiver::Mut || !old_state_only {
                errors.push(syn::Error::new_spanned(
                    &f.sig,
                    "#[app::migrate] methods take `&mut self` and at most the old state, by reference (`old: &StateV1`)",
                ));
            } else if migrations.iter().any(|(v, _)| *v == from) {
                errors.push(syn::Error::new_spanned(
                    &f.sig.ident,
                    format!("there is already a migration from state version {from}"),
                ));
            } else {
                migrations.push((from, method));
            }
            continue;
        }
        if let Some(from) = check_from {
            if method.receiver != Receiver::Ref || !old_state_only {
                errors.push(syn::Error::new_spanned(
                    &f.sig,
                    "#[app::migration_check] methods take `&self` and at most the old state, by reference (`old: &StateV1`)",
                ));
            } else if checks.iter().any(|(v, _, _)| *v == from) {
                errors.push(syn::Error::new_spanned(
                    &f.sig.ident,
                    format!("there is already a check of the migration from state version {from}"),
                ));
            } else {
                checks.push((from, method, returns_bool));
            }
            continue;
        }
        if method.receiver == Receiver::None {
            // Associated helpers without `self` are not callable.
            continue;
        }
        calls.push(method);
    }
    for (from, m, _) in &checks {
        if !migrations.iter().any(|(v, _)| v == from) {
            errors.push(syn::Error::new_spanned(
                &m.name,
                format!("#[app::migration_check(from = {from})] checks a migration this app does not have: add #[app::migrate(from = {from})]"),
            ));
        }
    }
    if init.is_none() {
        errors.push(syn::Error::new(
            imp.impl_token.span,
            "an #[app::logic] impl block needs one `#[app::init] pub fn init(..) -> Self`",
        ));
    }
    let Some(init) = init.filter(|_| errors.0.is_none()) else {
        // Keep the impl (without our markers) so calls to its methods do not
        // add errors of their own.
        let mut out = errors
            .0
            .map(syn::Error::into_compile_error)
            .unwrap_or_default();
        out.extend(quote!(#imp));
        return Ok(out);
    };

    let mut arg_structs = Vec::new();
    let describe: Vec<TokenStream> = calls
        .iter()
        .map(|m| {
            let name = m.name.to_string();
            let intent = if m.receiver == Receiver::Mut {
                quote!(::mero_sdk::__private::Intent::Mutating)
            } else {
                quote!(::mero_sdk::__private::Intent::ReadOnly)
            };
            quote! { ::mero_sdk::__private::MethodInfo { name: #name.into(), intent: #intent } }
        })
        .collect();

    let mut arms = Vec::new();
    for m in &calls {
        let (st, parse, args) = args_of(m);
        arg_structs.push(st);
        let name = &m.name;
        let key = name.to_string();
        let bind = if m.receiver == Receiver::Mut {
            quote!(let mut __s)
        } else {
            quote!(let __s)
        };
        let out = output(&m.output, quote!(__s.#name(#(#args),*)));
        arms.push(quote! {
            #key => {
                #parse
                #bind = <#self_ty as ::mero_sdk::__private::AppState>::__load();
                #out
            }
        });
    }

    let (init_struct, init_parse, init_args) = args_of(&init);
    arg_structs.push(init_struct);
    let init_name = &init.name;
    let init_value = match init.output {
        Output::AppResult | Output::Result => quote! {
            match <#self_ty>::#init_name(#(#init_args),*) {
                ::core::result::Result::Ok(s) => s,
                ::core::result::Result::Err(e) => return ::core::result::Result::Err(
                    ::mero_sdk::__private::app_error(::core::convert::Into::into(e))),
            }
        },
        _ => quote! { <#self_ty>::#init_name(#(#init_args),*) },
    };

    let old_state = |m: &Method| m.params.first().map(|(_, ty, _)| ty.clone());
    let mut old_asserts = Vec::new();
    let migration_infos: Vec<TokenStream> = migrations
        .iter()
        .map(|(from, m)| {
            let name = m.name.to_string();
            let checked = checks.iter().any(|(v, _, _)| v == from);
            let reads = match old_state(m) {
                Some(old) => {
                    let msg = format!("a migration from state version {from} reads `{}`, which must be declared with #[app::state(version = {from})]", quote!(#old));
                    old_asserts.push(quote! {
                        const _: () = ::core::assert!(<#old as ::mero_sdk::__private::AppState>::STATE_VERSION == #from, #msg);
                    });
                    quote! { ::mero_sdk::__private::fields(<#old as ::mero_sdk::__private::AppState>::SCHEMA) }
                }
                None => quote! { ::std::vec::Vec::new() },
            };
            quote! { ::mero_sdk::__private::MigrationInfo { from_version: #from, method: #name.into(), reads: #reads, checked: #checked } }
        })
        .collect();
    let with_old = |m: &Method, receiver: TokenStream| -> TokenStream {
        let name = &m.name;
        match old_state(m) {
            Some(old) => quote! {{
                let __old = <#old as ::mero_sdk::__private::AppState>::__load_frozen();
                #receiver.#name(&__old)
            }},
            None => quote!(#receiver.#name()),
        }
    };
    let migration_arms: Vec<TokenStream> = migrations
        .iter()
        .map(|(from, m)| {
            let out = output(&m.output, with_old(m, quote!(__s)));
            quote! {
                #from => {
                    let mut __s = <#self_ty as ::mero_sdk::__private::AppState>::__load();
                    #out.map(|_| ())
                }
            }
        })
        .collect();
    let check_arms: Vec<TokenStream> = checks
        .iter()
        .map(|(from, m, returns_bool)| {
            let call = with_old(m, quote!(__s));
            let out = if *returns_bool {
                let name = m.name.to_string();
                quote!(::mero_sdk::__private::check_output(#call, #name))
            } else {
                output(&m.output, call)
            };
            quote! {
                #from => {
                    let __s = <#self_ty as ::mero_sdk::__private::AppState>::__load();
                    #out.map(|_| ())
                }
            }
        })
        .collect();

    Ok(quote! {
        #imp

        const _: () = {
            #(#arg_structs)*

            #(#old_asserts)*

            impl ::mero_sdk::__private::App for #self_ty {
                type State = #self_ty;

                fn describe() -> ::mero_sdk::__private::AppInfo {
                    ::mero_sdk::__private::AppInfo {
                        package: <#self_ty as ::mero_sdk::__private::AppState>::PACKAGE.into(),
                        version: <#self_ty as ::mero_sdk::__private::AppState>::VERSION.into(),
                        methods: vec![#(#describe),*],
                        state_version: <#self_ty as ::mero_sdk::__private::AppState>::STATE_VERSION,
                        schema: ::mero_sdk::__private::fields(<#self_ty as ::mero_sdk::__private::AppState>::SCHEMA),
                        migrations: vec![#(#migration_infos),*],
                    }
                }

                fn init(__args: &str) -> ::core::result::Result<(), ::mero_sdk::__private::AppError> {
                    let __method = "init";
                    #init_parse
                    let __state = #init_value;
                    <#self_ty as ::mero_sdk::__private::AppState>::__store(__state)
                        .map_err(::mero_sdk::__private::app_error)
                }

                fn call(__method: &str, __args: &str) -> ::core::result::Result<::std::string::String, ::mero_sdk::__private::AppError> {
                    match __method {
                        #(#arms)*
                        _ => ::core::result::Result::Err(::mero_sdk::__private::unknown_method(__method)),
                    }
                }

                fn migrate(__from: u32) -> ::core::result::Result<(), ::mero_sdk::__private::AppError> {
                    match __from {
                        #(#migration_arms)*
                        _ => ::core::result::Result::Err(::mero_sdk::__private::AppError::UnknownMethod(
                            ::std::format!("no migration from state version {}", __from))),
                    }
                }

                fn check_migration(__from: u32) -> ::core::result::Result<(), ::mero_sdk::__private::AppError> {
                    match __from {
                        #(#check_arms)*
                        // Nothing to check: the migration stands on its own.
                        _ => ::core::result::Result::Ok(()),
                    }
                }
            }
        };

        // Component exports only exist on wasm; native builds (clippy, unit
        // tests of app logic) type-check everything else.
        #[doc(hidden)]
        #[cfg(target_arch = "wasm32")]
        type __MeroAppExport = ::mero_sdk::__private::Export<#self_ty>;
        #[cfg(target_arch = "wasm32")]
        ::mero_sdk::bindings::__export_context_app!(__MeroAppExport with_types_in ::mero_sdk::bindings);
    })
}

/// Removes `#[app::init]`, `#[app::view]` and `#[app::migrate(..)]` from a
/// method's attributes and returns them.
fn take_markers(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> Vec<Marker> {
    let mut markers = Vec::new();
    attrs.retain(|a| {
        let segs: Vec<String> = a
            .path()
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        let is_ours = match segs.as_slice() {
            [one] => matches!(
                one.as_str(),
                "init" | "view" | "migrate" | "migration_check"
            ),
            [.., app, _] => app == "app",
            _ => false,
        };
        if !is_ours {
            return true;
        }
        match segs.last().map(String::as_str) {
            Some("init") => markers.push(Marker::Init),
            Some("view") => markers.push(Marker::View),
            Some(kind @ ("migrate" | "migration_check")) => {
                let check = kind == "migration_check";
                if matches!(a.meta, syn::Meta::Path(_)) {
                    errors.push(syn::Error::new_spanned(
                        a,
                        format!(
                            "expected #[app::{kind}(from = N)]: the state version it migrates from"
                        ),
                    ));
                    return false;
                }
                let mut from = None;
                let res = a.parse_nested_meta(|meta| {
                    if meta.path.is_ident("from") {
                        from = Some(meta.value()?.parse::<LitInt>()?.base10_parse()?);
                        Ok(())
                    } else {
                        Err(meta.error("expected `from = <state version>`"))
                    }
                });
                match (res, from) {
                    (Err(e), _) => errors.push(e),
                    (Ok(()), Some(v)) if check => markers.push(Marker::Check(v)),
                    (Ok(()), Some(v)) => markers.push(Marker::Migrate(v)),
                    (Ok(()), None) => errors.push(syn::Error::new_spanned(
                        a,
                        format!("expected #[app::{kind}(from = N)]"),
                    )),
                }
            }
            _ => return true,
        }
        false
    });
    markers
}

fn method(f: &ImplItemFn, errors: &mut Errors) -> Option<Method> {
    let sig = &f.sig;
    let mut ok = true;
    if let Some(a) = &sig.asyncness {
        errors.push(syn::Error::new_spanned(a, "app methods cannot be async"));
        ok = false;
    }
    if sig.generics.type_params().next().is_some() || sig.generics.const_params().next().is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "app methods cannot have type or const parameters",
        ));
        ok = false;
    }
    let mut receiver = Receiver::None;
    let mut params = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                if r.reference.is_none() {
                    errors.push(syn::Error::new_spanned(
                        r,
                        "app methods take `&self` or `&mut self`, not `self`",
                    ));
                    ok = false;
                }
                receiver = if r.mutability.is_some() {
                    Receiver::Mut
                } else {
                    Receiver::Ref
                };
            }
            FnArg::Typed(pt) => {
                let Pat::Ident(pi) = &*pt.pat else {
                    errors.push(syn::Error::new_spanned(&pt.pat, "app method parameters must be plain names: they are the JSON argument keys"));
                    ok = false;
                    continue;
                };
                match &*pt.ty {
                    Type::Reference(r) if r.mutability.is_some() => {
                        errors.push(syn::Error::new_spanned(
                            &pt.ty,
                            "app method parameters cannot be `&mut`: arguments come from JSON",
                        ));
                        ok = false;
                    }
                    Type::Reference(r) => params.push((pi.ident.clone(), owned(&r.elem), true)),
                    ty => params.push((pi.ident.clone(), ty.clone(), false)),
                }
            }
        }
    }
    let output = match &sig.output {
        ReturnType::Default => Output::Unit,
        ReturnType::Type(_, ty) => result_arity(ty),
    };
    ok.then(|| Method {
        name: sig.ident.clone(),
        receiver,
        params,
        output,
    })
}

/// The owned type to deserialize for a `&T` parameter.
fn owned(elem: &Type) -> Type {
    match elem {
        Type::Path(p) if p.path.is_ident("str") => syn::parse_quote!(::std::string::String),
        Type::Slice(s) => {
            let t = &s.elem;
            syn::parse_quote!(::std::vec::Vec<#t>)
        }
        other => other.clone(),
    }
}

fn result_arity(ty: &Type) -> Output {
    let Type::Path(p) = ty else {
        return Output::Value;
    };
    let Some(last) = p.path.segments.last() else {
        return Output::Value;
    };
    if last.ident != "Result" {
        return Output::Value;
    }
    match &last.arguments {
        PathArguments::AngleBracketed(a) => {
            match a
                .args
                .iter()
                .filter(|g| matches!(g, GenericArgument::Type(_)))
                .count()
            {
                1 => Output::AppResult,
                2 => Output::Result,
                _ => Output::Value,
            }
        }
        _ => Output::Value,
    }
}

fn output(kind: &Output, call: TokenStream) -> TokenStream {
    match kind {
        Output::Unit => quote! { { #call; ::mero_sdk::__private::value_output(()) } },
        Output::Value => quote! { ::mero_sdk::__private::value_output(#call) },
        Output::AppResult => quote! { ::mero_sdk::__private::app_result_output(#call) },
        Output::Result => quote! { ::mero_sdk::__private::result_output(#call) },
    }
}

/// The struct a method's JSON arguments deserialize into, the statement
/// parsing them, and the expressions passing them to the method.
fn args_of(m: &Method) -> (TokenStream, TokenStream, Vec<TokenStream>) {
    let st = format_ident!("__MeroArgs_{}", m.name, span = Span::call_site());
    let fields: Vec<TokenStream> = m.params.iter().map(|(n, t, _)| quote! { #n: #t }).collect();
    let args: Vec<TokenStream> = m
        .params
        .iter()
        .map(|(n, _, by_ref)| {
            if *by_ref {
                quote! { &__a.#n }
            } else {
                quote! { __a.#n }
            }
        })
        .collect();
    let def = quote! {
        #[allow(non_camel_case_types)]
        #[derive(::mero_sdk::serde::Deserialize)]
        #[serde(crate = "::mero_sdk::serde", deny_unknown_fields)]
        struct #st { #(#fields),* }
    };
    let parse = quote! {
        #[allow(unused_variables)]
        let __a: #st = ::mero_sdk::__private::parse_args(__method, __args)?;
    };
    (def, parse, args)
}
