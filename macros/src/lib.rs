//! The `#[tasklets::task]` attribute. See the `tasklets` crate for documentation.

use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, spanned::Spanned, FnArg, ItemFn, ReturnType};

/// Turns `async fn name(cx: Cx, args…) -> T { body }` into `fn name(args…) -> tasklets::Tasklet<T>`,
/// which spawns the body as a tasklet on the current runtime thread.
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return syn::Error::new(attr.span(), "#[tasklets::task] takes no arguments")
            .to_compile_error()
            .into();
    }
    let func = parse_macro_input!(item as ItemFn);
    match expand(func) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn expand(func: ItemFn) -> syn::Result<proc_macro2::TokenStream> {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "#[tasklets::task] needs an `async fn`",
        ));
    }
    let mut inputs = sig.inputs.iter();
    let cx = match inputs.next() {
        Some(FnArg::Typed(pat)) => pat.clone(),
        Some(FnArg::Receiver(r)) => {
            return Err(syn::Error::new(
                r.span(),
                "#[tasklets::task] cannot take `self`: use a plain function",
            ))
        }
        None => {
            return Err(syn::Error::new(
                sig.paren_token.span.join(),
                "#[tasklets::task] needs a first parameter `cx: tasklets::Cx`",
            ))
        }
    };
    let cx_pat = &cx.pat;
    let cx_ty = &cx.ty;
    let rest: Vec<&FnArg> = inputs.collect();
    let output = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let name = &sig.ident;
    let generics = &sig.generics;
    let where_clause = &sig.generics.where_clause;
    Ok(quote! {
        #(#attrs)*
        #vis fn #name #generics (#(#rest),*) -> ::tasklets::Tasklet<#output> #where_clause {
            ::tasklets::spawn(move |#cx_pat: #cx_ty| async move #block)
        }
    })
}
