//! Tail calls whose index is a constant at their call site.
//!
//! The x86-64 JIT (since 5.5) compiles a tail call whose index the
//! verifier sees as one constant into a direct jump, patched whenever the
//! program array changes. With an index in a register it emits an
//! indirect jump, which on a kernel with retpolines (this build machine's
//! spectre_v2 mitigation) goes through a thunk that mispredicts on
//! purpose. `ProgramArray::tail_call(ctx, index)` does not keep a
//! constant where the index is picked by a `match`: LLVM merges the arms'
//! calls into one and picks the index in a register. [`tail_call`] writes
//! each call in inline assembly, which LLVM never merges when the text
//! differs, and the index is part of the text.
//!
//! sensor/build.rs checks the built object: every tail call's index is
//! set by the instruction just before it.

/// `tail_call!(ctx, PROGS, INDEX)`: tail-calls `PROGS[INDEX]` with the
/// program's context `ctx` (`*mut c_void`). `PROGS` is a `ProgramArray`
/// static, `INDEX` a `u32` constant expression. On failure (no program in
/// the slot) it returns and the program goes on.
macro_rules! tail_call {
    ($ctx:expr, $progs:ident, $index:expr) => {
        // SAFETY: bpf_tail_call (helper 12) with this program's own context
        // (r1), a program array (r2) and an index (r3); r0..r5 are the
        // call's scratch registers. It jumps away or returns an error.
        unsafe {
            core::arch::asm!(
                "r2 = {progs} ll",
                "r3 = {index}",
                "call 12",
                progs = sym $progs,
                index = const $index,
                inout("r1") $ctx => _,
                out("r0") _,
                out("r2") _,
                out("r3") _,
                out("r4") _,
                out("r5") _,
            )
        }
    };
}
pub(crate) use tail_call;
