//! The sensor's log words for a program the verifier refused, which the
//! harnesses look for in its log (the host tests, and `cargo xtask
//! kernels` and vm-test on the guests'): written once, for both sides.

/// What the sensor logs, at error level, for a program the verifier
/// refused as too complex, or nearly did.
pub const TOO_COMPLEX: &str = "too complex for this kernel's verifier";

/// Is `line`, of the sensor's log, the verifier refusing a program the
/// sensor expected to load? A refusal for complexity, whatever the
/// program (the verifier walks a different count of paths on each kernel,
/// so each must be checked), or a warning with the verifier's output (a
/// hook the sensor expected to load: the refusals it expects, such as
/// fentry's under lockdown or 5.10's of the chown hook's struct
/// arguments, it logs at info level). Either leaves the sensor running
/// with a fallback, or without the hook: a bug of ours all the same.
pub fn is_refusal(line: &str) -> bool {
    line.contains(TOO_COMPLEX) || (line.contains("WARN") && line.contains("Verifier output"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_told_from_the_expected_ones() {
        assert!(is_refusal(
            "ERROR x: program p is too complex for this kernel's verifier (E2BIG)"
        ));
        assert!(is_refusal(
            "WARN x: hook h refused. Verifier output: 0: r1 = …"
        ));
        assert!(!is_refusal("INFO x: fentry refused. Verifier output: "));
        assert!(!is_refusal("WARN x: something else"));
    }
}
