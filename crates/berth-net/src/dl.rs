//! Optional system libraries loaded at first use (through `libloading`): the netfilter
//! libraries Berth calls in-process where they are installed, falling back otherwise.

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};

/// Opens the shared library `name`, kept for the life of the process; `None` when it is
/// not installed.
pub(crate) fn open(name: &str) -> Option<&'static Library> {
    // SAFETY: only the netfilter libraries (libnftables, libnetfilter_conntrack) are
    // opened here; their initialisers have no preconditions on the caller.
    let lib = unsafe { Library::open(Some(name), RTLD_NOW | RTLD_LOCAL) }.ok()?;
    Some(Box::leak(Box::new(lib)))
}

/// The function `name` of `lib`, or `None` when the library lacks it.
///
/// # Safety
/// `T` must be the function-pointer type of the symbol's C signature.
pub(crate) unsafe fn function<T: Copy>(lib: &'static Library, name: &str) -> Option<T> {
    // SAFETY: the caller guarantees `T` is the symbol's type; the library is never
    // closed, so the pointer stays valid.
    unsafe { lib.get::<T>(name.as_bytes()).ok().map(|s| *s) }
}
