//! nftables changes in-process through `libnftables.so.1` (Debian's `libnftables1`, which
//! the `nft` tool itself is built on): a script is parsed and sent to the kernel as one
//! netlink batch, so a change is one transaction and no process is spawned. The library is
//! loaded at first use with `dlopen`; where it is missing, [`run`] says so and the caller
//! falls back to `nft -f -`.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::{Mutex, OnceLock};

use crate::{dl, NetError, Result};

type CtxNew = unsafe extern "C" fn(u32) -> *mut c_void;
type CtxFree = unsafe extern "C" fn(*mut c_void);
type RunCmd = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;
type BufferErr = unsafe extern "C" fn(*mut c_void) -> c_int;
type GetErr = unsafe extern "C" fn(*mut c_void) -> *const c_char;

struct Lib {
    ctx_new: CtxNew,
    ctx_free: CtxFree,
    run_cmd: RunCmd,
    buffer_error: BufferErr,
    buffer_output: BufferErr,
    get_error: GetErr,
    get_output: GetErr,
}

/// The library's functions, or None when it cannot be loaded.
fn lib() -> Option<&'static Lib> {
    static LIB: OnceLock<Option<Lib>> = OnceLock::new();
    LIB.get_or_init(|| {
        let h = dl::open("libnftables.so.1")?;
        // SAFETY: each type is the C signature of libnftables' public API
        // (nftables/libnftables.h).
        unsafe {
            Some(Lib {
                ctx_new: dl::function(h, "nft_ctx_new")?,
                ctx_free: dl::function(h, "nft_ctx_free")?,
                run_cmd: dl::function(h, "nft_run_cmd_from_buffer")?,
                buffer_error: dl::function(h, "nft_ctx_buffer_error")?,
                buffer_output: dl::function(h, "nft_ctx_buffer_output")?,
                get_error: dl::function(h, "nft_ctx_get_error_buffer")?,
                get_output: dl::function(h, "nft_ctx_get_output_buffer")?,
            })
        }
    })
    .as_ref()
}

/// Whether libnftables could be loaded.
pub fn available() -> bool {
    lib().is_some()
}

/// Runs `script` (what `nft -f -` would read) as one transaction. `Ok(None)` when the
/// library is not there; `Ok(Some(()))` when applied.
pub fn run(script: &str) -> Result<Option<()>> {
    Ok(run_with_output(script)?.map(|_| ()))
}

/// Like [`run`], returning what `nft` would print (a `list` command's output).
pub fn run_with_output(script: &str) -> Result<Option<String>> {
    let Some(l) = lib() else {
        return Ok(None);
    };
    // One context at a time: libnftables keeps some global parser state.
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let cmd = CString::new(script)
        .map_err(|_| NetError::System("an nft script with a NUL byte".into()))?;
    // SAFETY: the context is created, used and freed here only, under LOCK; the error
    // buffer is read before the context is freed; `cmd` outlives the call.
    unsafe {
        let ctx = (l.ctx_new)(0);
        if ctx.is_null() {
            return Err(NetError::System("nft_ctx_new failed".into()));
        }
        (l.buffer_error)(ctx);
        (l.buffer_output)(ctx);
        let rc = (l.run_cmd)(ctx, cmd.as_ptr());
        let out = if rc == 0 {
            let o = (l.get_output)(ctx);
            Ok(Some(if o.is_null() {
                String::new()
            } else {
                CStr::from_ptr(o).to_string_lossy().into_owned()
            }))
        } else {
            let msg = (l.get_error)(ctx);
            let msg = if msg.is_null() {
                String::new()
            } else {
                CStr::from_ptr(msg).to_string_lossy().trim().to_string()
            };
            Err(NetError::System(format!("nft failed: {msg}")))
        };
        (l.ctx_free)(ctx);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_script_is_an_error_not_a_panic() {
        if !available() {
            return; // no libnftables on this machine: nothing to check
        }
        let err = run("this is not nft\n").unwrap_err().to_string();
        assert!(err.starts_with("nft failed:"), "{err}");
        // a table of this test's own, listed and deleted
        let t = format!("berth_unit_{}", std::process::id());
        run(&format!("table ip {t} {{\n\tchain c {{\n\t}}\n}}\n")).unwrap();
        let listed = run_with_output(&format!("list table ip {t}\n"))
            .unwrap()
            .unwrap();
        assert!(listed.contains(&format!("table ip {t}")), "{listed}");
        run(&format!("delete table ip {t}\n")).unwrap();
    }
}
