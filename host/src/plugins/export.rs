//! A component's exported function, found and type-checked once per
//! compiled version instead of once per decision.
//!
//! bindgen's `*Pre::instantiate` looks every export up and type-checks it
//! against the Rust types on each instantiation: about 8% of a fresh-instance
//! decision. The check is per instance in wasmtime only because resource
//! types differ between instances; the plugin WIT defines no resources, so
//! an export's type is fixed by the component alone. [`CheckedExport::new`]
//! therefore checks it once, on a probe instance, when the version is
//! compiled, and every decision afterwards calls it unchecked.

use std::marker::PhantomData;

use wasmtime::Store;
use wasmtime::component::{ComponentExportIndex, ComponentNamedList, InstancePre, Lift, Lower, TypedFunc};

use super::sandbox::HostState;

/// `interface#func` of one component, with the Rust types it was checked
/// against (`P` and `R` are those of [`TypedFunc`]; a borrowed parameter is
/// named with `'static` here and any lifetime at the call).
pub struct CheckedExport<P, R> {
    pre: InstancePre<HostState>,
    func: ComponentExportIndex,
    _types: PhantomData<fn(P) -> R>,
}

impl<P, R> CheckedExport<P, R>
where
    P: ComponentNamedList + Lower,
    R: ComponentNamedList + Lift,
{
    /// Finds `func` in the exported `interface` and type-checks it, using
    /// `probe` (a sandboxed store with limits) for one instantiation. The
    /// outer error is the instantiation failing (a trap, a limit); the inner
    /// one says what the component's author got wrong.
    pub fn new(
        pre: InstancePre<HostState>,
        interface: &str,
        func: &str,
        probe: &mut Store<HostState>,
    ) -> wasmtime::Result<Result<Self, String>> {
        let component = pre.component();
        let Some(iface) = component.get_export_index(None, interface) else {
            return Ok(Err(format!("the component does not export `{interface}`")));
        };
        let Some(index) = component.get_export_index(Some(&iface), func) else {
            return Ok(Err(format!("`{interface}` does not export `{func}`")));
        };
        let instance = pre.instantiate(&mut *probe)?;
        let Some(found) = instance.get_func(&mut *probe, index) else {
            return Ok(Err(format!("`{interface}#{func}` is not a function")));
        };
        if let Err(e) = found.typed::<P, R>(&*probe) {
            return Ok(Err(format!("`{interface}#{func}` does not have the type the WIT gives it: {e:#}")));
        }
        Ok(Ok(CheckedExport { pre, func: index, _types: PhantomData }))
    }
}

impl<P, R> CheckedExport<P, R> {
    /// A fresh instance in `store`, and the export on it, typed as `Q`/`S`.
    ///
    /// # Safety
    ///
    /// `Q` and `S` must be `P` and `R` up to the lifetimes of borrowed
    /// parameters (which do not change the canonical ABI).
    pub unsafe fn instantiate<Q, S>(&self, store: &mut Store<HostState>) -> wasmtime::Result<TypedFunc<Q, S>>
    where
        Q: ComponentNamedList + Lower,
        S: ComponentNamedList + Lift,
    {
        let instance = self.pre.instantiate(&mut *store)?;
        let func = instance
            .get_func(&mut *store, self.func)
            .ok_or_else(|| wasmtime::format_err!("the checked export went missing"))?;
        // SAFETY: `new` type-checked this export of this component against
        // `P`/`R`, which the caller guarantees `Q`/`S` are; with no resource
        // types in the WIT, every instance of the component has those types.
        Ok(unsafe { TypedFunc::new_unchecked(func) })
    }
}
