//! The machine a benchmark ran on, at the head of its report.
//!
//! The same build measured on two machines, or on one VM on two days, can
//! differ threefold: what the CPU's mitigations make every kernel return
//! and indirect branch cost weighs on each syscall and on each BPF helper
//! call (on AMD, `spec_rstack_overflow`'s "Safe RET" makes every return
//! go through a thunk). Figures are only comparable with this section
//! alike.

use std::path::Path;

/// The CPU vulnerabilities whose mitigations change the cost of the
/// kernel's calls, returns and indirect branches.
const MITIGATIONS: [&str; 3] = ["spectre_v2", "spec_rstack_overflow", "retbleed"];

/// The report's machine section, from `/proc` and `/sys`.
pub fn section() -> String {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let kernel = read("/proc/sys/kernel/osrelease");
    let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let clocksource = read("/sys/devices/system/clocksource/clocksource0/current_clocksource");
    let vulns = Path::new("/sys/devices/system/cpu/vulnerabilities");
    let mitigations: Vec<(&str, Option<String>)> = MITIGATIONS
        .iter()
        .map(|name| (*name, read(&vulns.join(name).to_string_lossy())))
        .collect();
    render(
        kernel.as_deref(),
        cpu_model(&cpuinfo),
        cpus,
        clocksource.as_deref(),
        &mitigations,
    )
}

fn render(
    kernel: Option<&str>,
    model: Option<&str>,
    cpus: usize,
    clocksource: Option<&str>,
    mitigations: &[(&str, Option<String>)],
) -> String {
    let known = |v: Option<&str>| v.map_or("unknown", str::trim).to_owned();
    let mut s = String::from("\n# Machine\n\n");
    s.push_str(&format!("- kernel {}\n", known(kernel)));
    s.push_str(&format!("- CPU {}, {cpus} CPUs\n", known(model)));
    s.push_str(&format!("- clocksource {}\n", known(clocksource)));
    for (name, state) in mitigations {
        s.push_str(&format!("- {name}: {}\n", known(state.as_deref())));
    }
    s
}

/// The first `model name` of `/proc/cpuinfo` (x86).
fn cpu_model(cpuinfo: &str) -> Option<&str> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_is_the_first_model_name_line() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel\t\t: 1\n\
                       model name\t: AMD EPYC 7B13\nflags\t\t: fpu\n\n\
                       processor\t: 1\nmodel name\t: other\n";
        assert_eq!(cpu_model(cpuinfo), Some("AMD EPYC 7B13"));
        assert_eq!(cpu_model("processor\t: 0\n"), None);
    }

    #[test]
    fn the_section_names_each_mitigation_and_what_is_unknown() {
        let s = render(
            Some("6.18.44\n"),
            None,
            2,
            Some("tsc\n"),
            &[
                ("spectre_v2", Some("Mitigation: Retpolines\n".into())),
                ("retbleed", None),
            ],
        );
        assert!(s.contains("- kernel 6.18.44\n"), "{s}");
        assert!(s.contains("- CPU unknown, 2 CPUs\n"), "{s}");
        assert!(s.contains("- clocksource tsc\n"), "{s}");
        assert!(s.contains("- spectre_v2: Mitigation: Retpolines\n"), "{s}");
        assert!(s.contains("- retbleed: unknown\n"), "{s}");
    }
}
