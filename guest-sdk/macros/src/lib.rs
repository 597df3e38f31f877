//! The `#[app::*]` macros of `mero-sdk`. Use them through `mero_sdk::app`.
//!
//! Every macro reports all the problems it finds in one pass, each pointing at
//! the code at fault.

mod event;
mod logic;
mod state;

use proc_macro::TokenStream;

/// Declares the app's state: a struct whose named fields are CRDT
/// collections. `#[app::state(version = 2)]` sets the state version (1 by
/// default), `package = "com.example.app"` the package every version of the
/// app shares (the crate name by default); the app version is the crate's.
/// A version 2 app declares its version 1 state with this macro too, to
/// read it in `#[app::migrate(from = 1)]`.
#[proc_macro_attribute]
pub fn state(attr: TokenStream, item: TokenStream) -> TokenStream {
    state::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes the public methods of an `impl` block of the state callable:
/// `&self` methods are read-only views, `&mut self` methods mutate. One
/// method must be marked `#[app::init]`.
#[proc_macro_attribute]
pub fn logic(attr: TokenStream, item: TokenStream) -> TokenStream {
    logic::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Declares the app's events: an enum whose variants are event kinds.
#[proc_macro_attribute]
pub fn event(attr: TokenStream, item: TokenStream) -> TokenStream {
    event::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

fn outside_logic(name: &str, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    let err = syn::Error::new_spanned(
        &item,
        format!(
            "#[app::{name}] marks a method inside an #[app::logic] impl block; it cannot be used here"
        ),
    );
    let mut out = err.into_compile_error();
    out.extend(item);
    out.into()
}

/// Marks the constructor inside an `#[app::logic]` block.
#[proc_macro_attribute]
pub fn init(_attr: TokenStream, item: TokenStream) -> TokenStream {
    outside_logic("init", item)
}

/// Marks a read-only method inside an `#[app::logic]` block.
#[proc_macro_attribute]
pub fn view(_attr: TokenStream, item: TokenStream) -> TokenStream {
    outside_logic("view", item)
}

/// Marks a migration inside an `#[app::logic]` block:
/// `#[app::migrate(from = 1)] pub fn m(&mut self, old: &StateV1)`, where
/// `StateV1` is the old state (optional when the migration does not read it).
#[proc_macro_attribute]
pub fn migrate(_attr: TokenStream, item: TokenStream) -> TokenStream {
    outside_logic("migrate", item)
}

/// Marks the check of a migration inside an `#[app::logic]` block:
/// `#[app::migration_check(from = 1)] pub fn c(&self, old: &StateV1)`,
/// returning `bool` or a `Result`. It runs read-only after the migration; a
/// failure aborts the upgrade.
#[proc_macro_attribute]
pub fn migration_check(_attr: TokenStream, item: TokenStream) -> TokenStream {
    outside_logic("migration_check", item)
}

/// Collects errors so that all of them are reported together.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    fn any(&self) -> bool {
        self.0.is_some()
    }

    /// The errors followed by `item`: keeping the item spares callers
    /// cascading errors of their own.
    fn with_item(self, item: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
        let mut out = self
            .0
            .map(syn::Error::into_compile_error)
            .unwrap_or_default();
        out.extend(item);
        out
    }
}
