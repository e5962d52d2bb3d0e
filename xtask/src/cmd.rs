//! Running commands with errors that name the step that failed.

use std::process::{Command, Output};

use anyhow::{Context as _, Result, bail};

/// Runs `c` with inherited stdio; fails naming `what` on a non-zero exit.
pub fn run(c: &mut Command, what: &str) -> Result<()> {
    let status = c
        .status()
        .with_context(|| format!("{what}: cannot start {c:?}"))?;
    if !status.success() {
        bail!("{what} failed ({status}): {c:?}");
    }
    Ok(())
}

/// Runs `c` and returns its output; fails naming `what` if it cannot start.
pub fn output(c: &mut Command, what: &str) -> Result<Output> {
    c.output()
        .with_context(|| format!("{what}: cannot start {c:?}"))
}

/// stdout of a command that must succeed.
pub fn stdout(c: &mut Command, what: &str) -> Result<String> {
    let out = output(c, what)?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last `n` lines of `text`: what an error shows of a console or a log.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The last `n` lines of a file (lossy UTF-8; empty if unreadable).
pub fn tail_of(path: &std::path::Path, n: usize) -> String {
    tail(
        &String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).replace('\r', ""),
        n,
    )
}
