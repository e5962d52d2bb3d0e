//! The fixture (`fixtures/scenario-events.jsonl`) holds, for each of the
//! scenario's expectations that hold on its kernel ([`FIXTURE_KERNEL`]),
//! the events that met it in a real guest run of `cargo xtask vm-test`,
//! tagged with their step and
//! trimmed of the fields every event repeats (host, agent, timestamp).
//! `refresh_fixture_from_a_guest_run` below writes it again from a run.

use serde_json::Value;

use super::*;

const FIXTURE: &str = include_str!("../fixtures/scenario-events.jsonl");
/// The kernel of the guest run the fixture comes from.
const FIXTURE_KERNEL: (u32, u32) = (6, 12);
const SCRIPT: &str = include_str!("../../../../scripts/attack-scenario.sh");

/// Step times one minute apart, in the scenario's order.
const T0: u64 = 1_764_600_000_000;
const STEP_GAP_MS: u64 = 60_000;

fn fixture() -> Vec<(String, Value)> {
    FIXTURE
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).expect("fixture line is JSON");
            let step = v["step"]
                .as_str()
                .expect("fixture line names its step")
                .to_owned();
            (step, v["event"].take())
        })
        .collect()
}

fn steps() -> Vec<StepTime> {
    SCENARIO
        .iter()
        .enumerate()
        .map(|(i, s)| StepTime {
            name: s.name.to_owned(),
            at_ms: T0 + i as u64 * STEP_GAP_MS,
        })
        .collect()
}

fn step_ms(name: &str) -> u64 {
    steps()
        .into_iter()
        .find(|s| s.name == name)
        .expect("a scenario step")
        .at_ms
}

/// Every fixture event, received 100 ms apart after its step's time.
fn run(mut keep: impl FnMut(&str, &Value) -> bool) -> Vec<Received> {
    fixture()
        .into_iter()
        .enumerate()
        .filter(|(_, (step, v))| keep(step, v))
        .map(|(i, (step, event))| Received {
            at_ms: step_ms(&step) + 100 * (i as u64 + 1),
            event,
        })
        .collect()
}

#[test]
fn a_full_run_finds_every_step() {
    let report = verify(&steps(), &run(|_, _| true), FIXTURE_KERNEL);
    assert_eq!(
        report.undetected(),
        Vec::<String>::new(),
        "{}",
        report.table()
    );
    let table = report.table();
    for step in SCENARIO {
        assert!(table.contains(&format!("| {} |", step.name)), "{table}");
    }
    assert!(!table.contains("| no ("), "{table}");
}

#[test]
fn every_expectation_is_met_by_its_own_steps_fixture() {
    // Each expectation matches an event of its own step, so a fixture that
    // drifts from the predicates fails here by name, not only as a count.
    let events = fixture();
    for step in SCENARIO {
        for e in step
            .expects
            .iter()
            .filter(|e| e.kernels.include(FIXTURE_KERNEL))
        {
            let n = events
                .iter()
                .filter(|(s, v)| s == step.name && (e.matches)(v))
                .count();
            if e.count == 0 {
                assert_eq!(n, 0, "{}: {} matched fixture events", step.name, e.what);
            } else {
                assert!(
                    n >= e.count,
                    "{}: {} matched {n} of {} fixture events",
                    step.name,
                    e.what,
                    e.count
                );
            }
        }
    }
}

#[test]
fn an_event_that_must_not_arrive_fails_its_step() {
    // The symlinked chmod's event, as if the filter had let a chmod of the
    // ignored file through as well.
    let mut events = run(|_, _| true);
    let leaked = events
        .iter()
        .find(|r| {
            r.event["event"]["action"] == "chmod" && r.event["file"]["path"] == "/tmp/.linked-tool"
        })
        .map(|r| {
            let mut event = r.event.clone();
            event["file"]["path"] = "/tmp/.ignored/plain".into();
            Received {
                at_ms: r.at_ms + 1,
                event,
            }
        })
        .expect("the fixture's ignored_symlink_chmod event");
    events.push(leaked);
    let report = verify(&steps(), &events, FIXTURE_KERNEL);
    assert_eq!(
        report.undetected(),
        vec!["ignored_symlink_chmod".to_owned()],
        "{}",
        report.table()
    );
    assert!(
        report.table().contains(
            "| ignored_symlink_chmod | no chmod of /tmp/.ignored/plain, under the ignored prefix | no: 1 arrived | - |"
        ),
        "{}",
        report.table()
    );
}

#[test]
fn a_kernel_without_the_chown_hook_expects_the_argument() {
    let mut events = run(|_, _| true);
    // 6.12's event names the file the kernel resolved: not what 5.10 sends.
    assert!(verify(&steps(), &events, (6, 1)).undetected().is_empty());
    assert_eq!(
        verify(&steps(), &events, (5, 10)).undetected(),
        vec!["symlink_chown".to_owned()]
    );
    // What 5.10 sends: the symlink's name, and no argument apart from it.
    let chown = events
        .iter_mut()
        .find(|r| r.event["event"]["action"] == "chown")
        .expect("the fixture's symlink_chown event");
    chown.event["file"]["path"] = chown.event["sensor"]["file_change"]["path_argument"].take();
    chown.event["sensor"]["file_change"]
        .as_object_mut()
        .expect("file_change")
        .remove("path_argument");
    let report = verify(&steps(), &events, (5, 10));
    assert!(report.undetected().is_empty(), "{}", report.table());
    assert!(
        report
            .table()
            .contains("(before 6.1: named by the argument)"),
        "{}",
        report.table()
    );
    assert!(!report.table().contains("(from 6.1"), "{}", report.table());
    assert_eq!(
        verify(&steps(), &events, (6, 1)).undetected(),
        vec!["symlink_chown".to_owned()]
    );
}

#[test]
fn a_missing_connect_names_exactly_the_reverse_shell() {
    let report = verify(
        &steps(),
        &run(|step, v| !(step == "reverse_shell" && v["event"]["action"] == "connect")),
        FIXTURE_KERNEL,
    );
    assert_eq!(
        report.undetected(),
        vec!["reverse_shell".to_owned()],
        "{}",
        report.table()
    );
    assert!(
        report.table().contains("| reverse_shell | successful connect by bash to 10.0.2.2 | no (0 of 1; 3 other `connect` since) | - |"),
        "dev's fast open and refused connects and the container's came, but not bash's to the \
         host: {}",
        report.table()
    );
}

#[test]
fn a_step_needs_all_of_its_events() {
    // The container's connect alone missing: its exec and chmod do not
    // make the step found.
    let report = verify(
        &steps(),
        &run(|step, v| !(step == "container_activity" && v["event"]["action"] == "connect")),
        FIXTURE_KERNEL,
    );
    assert_eq!(report.undetected(), vec!["container_activity".to_owned()]);
    // Three failed logins of the four: not a brute force seen.
    let mut dropped = false;
    let report = verify(
        &steps(),
        &run(|step, _| {
            let drop = step == "ssh_bruteforce" && !dropped;
            dropped |= drop;
            !drop
        }),
        FIXTURE_KERNEL,
    );
    assert_eq!(report.undetected(), vec!["ssh_bruteforce".to_owned()]);
    assert!(
        report
            .table()
            .contains("no (3 of 4; 1 other `authenticated` since)"),
        "the login's success: {}",
        report.table()
    );
}

#[test]
fn events_before_the_step_do_not_count() {
    let at = step_ms("setuid_shell");
    let chmod = fixture()
        .into_iter()
        .find(|(s, _)| s == "setuid_shell")
        .expect("fixture")
        .1;
    let others = run(|step, _| step != "setuid_shell");
    let with = |at_ms: u64| {
        let mut events = others
            .iter()
            .map(|r| Received {
                at_ms: r.at_ms,
                event: r.event.clone(),
            })
            .collect::<Vec<_>>();
        events.push(Received {
            at_ms,
            event: chmod.clone(),
        });
        verify(&steps(), &events, FIXTURE_KERNEL)
    };
    assert_eq!(
        with(at - SLACK_MS - 1).undetected(),
        vec!["setuid_shell".to_owned()],
        "before the slack"
    );
    assert!(
        with(at - SLACK_MS).undetected().is_empty(),
        "within the slack"
    );
    assert!(with(at + 5).undetected().is_empty());
}

#[test]
fn latency_is_to_the_event_that_completes_the_step() {
    let at = step_ms("ssh_bruteforce");
    let failure = fixture()
        .into_iter()
        .find(|(s, _)| s == "ssh_bruteforce")
        .expect("fixture")
        .1;
    let events: Vec<Received> = [40, 10, 30, 20, 99_000]
        .iter()
        .map(|d| Received {
            at_ms: at + d,
            event: failure.clone(),
        })
        .collect();
    let report = verify(&steps(), &events, FIXTURE_KERNEL);
    // The fourth failure, in receipt order, completed the step.
    assert!(report.table().contains("| ssh_bruteforce | 4 sshd authentication failures for dev from 10.0.2.2 | yes (5) | 40 |"), "{}", report.table());
}

#[test]
fn steps_not_run_and_unknown_steps_are_undetected() {
    let mut steps: Vec<StepTime> = steps()
        .into_iter()
        .filter(|s| s.name != "sensor_kill")
        .collect();
    steps.push(StepTime {
        name: "port_scan".into(),
        at_ms: T0,
    });
    let report = verify(&steps, &run(|_, _| true), FIXTURE_KERNEL);
    assert_eq!(
        report.undetected(),
        vec!["sensor_kill".to_owned(), "port_scan".to_owned()]
    );
    let table = report.table();
    assert!(
        table.contains("| sensor_kill | (step not in the steps file) | not run | - |"),
        "{table}"
    );
    assert!(
        table.contains("| port_scan | (no expectations in verify.rs) | unknown step | - |"),
        "{table}"
    );
}

#[test]
fn expected_missing_steps_are_shown_but_not_undetected() {
    let mut report = verify(
        &steps(),
        &run(|step, _| step != "memfd_exec"),
        FIXTURE_KERNEL,
    );
    for s in &mut report.steps {
        s.expected_missing = s.name == "memfd_exec" || s.name == "cron_persistence";
    }
    assert!(report.undetected().is_empty(), "{}", report.table());
    let table = report.table();
    assert!(table.contains("| memfd_exec | exec flagged fileless (memfd) | expected missing: no (0 of 1; 1 other `exec` since) | - |"), "{table}");
    // Found although listed: the table says to shorten the list.
    assert!(
        table.contains("listed in EXPECTED_MISSING: remove it"),
        "{table}"
    );
}

#[test]
fn expected_missing_names_scenario_steps() {
    for name in EXPECTED_MISSING {
        assert!(
            SCENARIO.iter().any(|s| s.name == *name),
            "{name} is not a step of the scenario"
        );
    }
}

#[test]
fn parse_steps_reads_the_scripts_lines() {
    let steps =
        parse_steps("ssh_bruteforce\t1764600000123\nssh_login\t1764600004567\n\n").expect("parses");
    assert_eq!(steps.len(), 2);
    assert_eq!(
        (steps[1].name.as_str(), steps[1].at_ms),
        ("ssh_login", 1_764_600_004_567)
    );
}

#[test]
fn parse_steps_rejects_bad_lines() {
    for (text, why) in [
        ("ssh_login 1764600004567\n", "no tab"),
        ("ssh_login\t17646000x4567\n", "not a number"),
        ("ssh_login\t\n", "no time"),
        ("\t1764600004567\n", "no name"),
        ("ssh_login\t1\textra\n", "a third field"),
        ("ssh_login\t1\nssh_login\t2\n", "a repeated step"),
    ] {
        let err = parse_steps(text)
            .err()
            .unwrap_or_else(|| panic!("{why}: accepted {text:?}"));
        assert!(
            format!("{err:#}").contains("line"),
            "{why}: the error names the line: {err:#}"
        );
    }
}

#[test]
fn the_script_plays_the_scenarios_steps_in_order() {
    let played: Vec<&str> = SCRIPT
        .lines()
        .filter_map(|l| l.trim().strip_prefix("step "))
        .filter(|name| !name.starts_with('(') && !name.contains('$'))
        .collect();
    let expected: Vec<&str> = SCENARIO.iter().map(|s| s.name).collect();
    assert_eq!(
        played, expected,
        "scripts/attack-scenario.sh and verify.rs disagree on the steps"
    );
}

#[test]
fn the_script_uses_the_names_the_verifier_matches() {
    for name in [
        BACKDOOR_USER,
        AUTHORIZED_KEYS,
        SETUID_COPY,
        IA32_COPY,
        CAPABILITY_COPY,
        MEMFD_MARKER,
        CRON_FILE,
        LOG_FILE,
        CONTAINER_NAME,
        CONTAINER_IMAGE,
        CONTAINER_MARKER,
        CONTAINER_FILE,
        HOST_IP,
    ] {
        assert!(
            SCRIPT.contains(name),
            "scripts/attack-scenario.sh does not mention {name}"
        );
    }
}

/// Rewrites the fixture from a real guest run: for each expectation, the
/// first events (as many as it needs) that match it after its step, with
/// the fields every event repeats (host, agent, timestamp) left out.
/// `VM_TEST_RUN=$PWD/target/vm-test/5.10 cargo test -p xtask -- --ignored refresh_fixture`
#[test]
#[ignore = "refreshes the fixture from a guest run named by VM_TEST_RUN"]
fn refresh_fixture_from_a_guest_run() {
    let dir =
        std::path::PathBuf::from(std::env::var_os("VM_TEST_RUN").expect("VM_TEST_RUN=<run dir>"));
    let steps = parse_steps(&std::fs::read_to_string(dir.join("steps.tsv")).expect("steps.tsv"))
        .expect("steps");
    let received =
        std::fs::read_to_string(dir.join("collector/received.log")).expect("received.log");
    // (receipt time, event), as the harness's collector reads them.
    let events: Vec<(u64, Value)> = received
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(t, json)| {
            let at = crate::vm_test::collector::rfc3339_ms(t).expect("a receipt time");
            (
                at,
                serde_json::from_str::<Value>(json.trim()).expect("JSON"),
            )
        })
        .collect();
    let run = dir
        .file_name()
        .expect("run name")
        .to_string_lossy()
        .into_owned();
    let kernel = crate::vm_test::kernel_version(&run).expect("the run's kernel, from its name");
    let mut out = String::new();
    for step in SCENARIO {
        let since = steps
            .iter()
            .find(|s| s.name == step.name)
            .expect("the step ran")
            .at_ms
            .saturating_sub(SLACK_MS);
        for e in step.expects.iter().filter(|e| e.kernels.include(kernel)) {
            let matched: Vec<&Value> = events
                .iter()
                .filter(|(t, v)| *t >= since && e.is_action(v) && (e.matches)(v))
                .map(|(_, v)| v)
                .take(e.count)
                .collect();
            assert_eq!(
                matched.len(),
                e.count,
                "{}: {} not in the run",
                step.name,
                e.what
            );
            for v in matched {
                let mut v = v.clone();
                for key in ["host", "agent", "@timestamp"] {
                    v.as_object_mut().expect("an object").remove(key);
                }
                let note = format!("captured by cargo xtask vm-test, run {run}");
                out.push_str(
                    &serde_json::json!({"step": step.name, "note": note, "event": v}).to_string(),
                );
                out.push('\n');
            }
        }
    }
    std::fs::write(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/vm_test/fixtures/scenario-events.jsonl"
        ),
        out,
    )
    .expect("write");
}

fn numbered(seqs: &[u64]) -> Vec<Received> {
    seqs.iter()
        .map(|n| Received {
            at_ms: T0,
            event: serde_json::json!({"event": {"sequence": n, "id": format!("a-{n}")}}),
        })
        .collect()
}

fn local_copy(seqs: &[u64]) -> String {
    seqs.iter()
        .map(|n| format!("{{\"event\":{{\"sequence\":{n},\"id\":\"a-{n}\"}}}}\n"))
        .collect()
}

#[test]
fn a_complete_stream_has_no_problems() {
    let events = numbered(&[3, 1, 2, 2, 4]);
    assert_eq!(
        completeness(&events, &local_copy(&[1, 2, 3, 4, 5])),
        Vec::<String>::new(),
        "a repeat is not a loss"
    );
}

#[test]
fn a_gap_in_the_sequence_is_named() {
    let problems = completeness(&numbered(&[1, 2, 5, 6]), &local_copy(&[1, 2, 3, 4, 5, 6]));
    assert_eq!(
        problems,
        vec!["2 sequence numbers below 6 never reached the collector: 3, 4".to_owned()]
    );
}

#[test]
fn events_missing_from_the_guests_copy_are_counted() {
    let mut local = local_copy(&[1, 3]);
    local.push_str("not json\n");
    let problems = completeness(&numbered(&[1, 2, 3]), &local);
    assert_eq!(
        problems,
        vec!["1 events the collector got are not in the guest's own copy".to_owned()]
    );
}

/// Before 5.19 the io_uring event has the operation alone, and only
/// there may it lack the path; an event that does not name its kernel
/// must have it.
#[test]
fn the_io_uring_step_wants_the_path_where_the_kernel_passes_the_request() {
    let (_, fixture_event) = fixture()
        .into_iter()
        .find(|(step, _)| step == "io_uring_persistence")
        .expect("the io_uring step in the fixture");
    assert!(is_io_uring_cron(&fixture_event), "{fixture_event}");
    let mut pathless = fixture_event.clone();
    pathless.as_object_mut().expect("object").remove("file");
    assert!(
        !is_io_uring_cron(&pathless),
        "no kernel named: the path is wanted"
    );
    for (kernel, matches) in [
        ("5.10.0-32-cloud-amd64", true),
        ("5.18.19", true),
        ("5.19.0-1-amd64", false),
        ("6.1.0-50-cloud-amd64", false),
    ] {
        pathless["host"] = serde_json::json!({"os": {"kernel": kernel}});
        assert_eq!(is_io_uring_cron(&pathless), matches, "{kernel}");
    }
}

#[test]
fn the_path_filter_check_needs_a_heartbeat_after_its_step_counting_no_drop() {
    let at = step_ms("ignored_symlink_chmod");
    let heartbeat = |at_ms: u64, drops: Value| Received {
        at_ms,
        event: serde_json::json!({
            "event": {"action": "heartbeat"},
            "sensor": {"heartbeat": {"path_filter_userspace_drops": drops}},
        }),
    };
    let problems = |events: &[Received]| path_filter_stayed_in_kernel(&steps(), events);
    assert!(problems(&[heartbeat(at - 5, 0.into()), heartbeat(at + 5, 0.into())]).is_empty());
    assert_eq!(
        problems(&[heartbeat(at - 5, 0.into())]),
        vec!["no heartbeat came after step ignored_symlink_chmod".to_owned()]
    );
    let dropped = problems(&[heartbeat(at + 5, 1.into())]);
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert!(dropped[0].contains("counts 1 userspace"), "{dropped:?}");
    let unnamed = problems(&[heartbeat(at + 5, Value::Null)]);
    assert!(
        unnamed[0].contains("has no path_filter_userspace_drops"),
        "{unnamed:?}"
    );
    assert_eq!(
        path_filter_stayed_in_kernel(&[], &[heartbeat(at + 5, 0.into())]),
        vec!["step ignored_symlink_chmod did not run".to_owned()]
    );
}

#[test]
fn the_backdoor_key_is_found_by_name_or_by_the_inode_a_refresh_found() {
    let (_, fixture_event) = fixture()
        .into_iter()
        .find(|(step, v)| step == "backdoor_account" && is_backdoor_keys_planted(v))
        .expect("the fixture's rename, matched by name");
    let labelled = |watched: &str, by: &str| {
        let mut v = fixture_event.clone();
        v["sensor"]["file_write"]["watched"] = watched.into();
        v["sensor"]["file_write"]["matched_by"] = by.into();
        is_backdoor_keys_planted(&v)
    };
    assert!(labelled("*/.ssh/", "name"));
    assert!(labelled(BACKDOOR_SSH_DIR, "inode"), "after a refresh");
    assert!(!labelled("/home/dev/.ssh/", "inode"), "another account's");
    assert!(!labelled(BACKDOOR_SSH_DIR, "name"), "a label no rule gives");
}

#[test]
fn the_cron_rename_through_the_magic_link_is_followed_to_the_movers_cwd() {
    let (_, fixture_event) = fixture()
        .into_iter()
        .find(|(step, v)| step == "cron_via_magic_link" && action(v, "rename"))
        .expect("the fixture's rename");
    assert!(is_cron_renamed_via_magic_link(&fixture_event));
    let shown = |field: &str, value: Value| {
        let mut v = fixture_event.clone();
        v["sensor"]["file_write"][field] = value;
        is_cron_renamed_via_magic_link(&v)
    };
    assert!(
        !shown("new_path", CRON_FILE_VIA_MAGIC_LINK.into()),
        "matched by inode, not followed"
    );
    assert!(
        !shown("unresolved", "exited".into()),
        "the mover's cwd not followed"
    );
    assert!(
        !shown("second_path_argument", Value::Null),
        "a rename by another path"
    );
    assert!(!shown("matched_by", "inode".into()));
}
