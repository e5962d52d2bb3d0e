//! Races between the sensor's read of a syscall's argument at its entry and
//! the kernel's own read of it, which another thread of the caller wins by
//! rewriting the argument in between (a sockaddr, or the file under an fd
//! number). The actor runs each race call after call; every event must
//! name what the kernel used, whatever the sensor read first.
//!
//! A race is won when the caller is interrupted inside a window of a few
//! hundred nanoseconds while a swapping thread runs on another CPU. With
//! the other tests of their families beside them (each with a sensor and
//! an actor of its own) on this two-CPU machine, a CI run won none of 3000
//! connects. So these tests have a binary of their own, run one at a time
//! ([`RACES`]), and in rounds until a race is won ([`ROUNDS`]): a test
//! whose race is never won tests nothing, and still fails.

use std::process::{Command, Stdio};
use std::sync::Mutex;

use sensor_tests::{Sensor, action, at, pid_of};
use serde_json::Value;

/// Held by each test for its whole run.
static RACES: Mutex<()> = Mutex::new(());

/// Rounds of [`CALLS`] calls each, at most, until a race is won.
const ROUNDS: usize = 5;
const CALLS: &str = "3000";

/// Runs the actor's `race` subcommand once; its pid and its stdout lines.
fn race(race: &str) -> (u64, Vec<String>) {
    let child = Command::new(env!("CARGO_BIN_EXE_actor"))
        .args([race, CALLS])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the actor");
    let pid = child.id() as u64;
    let out = child.wait_with_output().expect("wait for the actor");
    assert!(out.status.success(), "actor {race}: {out:?}");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    (pid, lines)
}

/// Plays rounds of `round` (which returns how many of its calls lost the
/// race, after checking every event of the round) until one call did.
fn until_won(what: &str, mut round: impl FnMut() -> (usize, usize)) {
    let mut won = 0;
    for n in 1..=ROUNDS {
        let (swapped, calls) = round();
        eprintln!("round {n}: {swapped} of {calls} {what} after the sensor read it");
        won += swapped;
        if won > 0 {
            return;
        }
    }
    panic!(
        "in {ROUNDS} rounds of {CALLS}, no call had its argument {what} after the sensor read it"
    );
}

/// connect's address is in the caller's memory, which the kernel copies
/// after the sensor's read at the call's entry, and another thread can
/// rewrite it in between (to pass a connection off as one to elsewhere).
/// The actor races exactly that on a UDP socket: every event must name
/// the peer the socket really got, whatever the address held when the
/// sensor looked.
#[test]
fn a_connect_names_the_peer_it_got_even_when_its_address_is_rewritten() {
    let _alone = RACES.lock().unwrap_or_else(|e| e.into_inner());
    let sensor = Sensor::start("");
    until_won("rewritten", || {
        let (actor, peers) = race("connect-swapped-addr");
        assert!(!peers.is_empty(), "no connect succeeded");
        let events = sensor.wait_for_count("the connects", peers.len(), |v| {
            action(v) == "connect" && pid_of(v) == actor && at(v, "event.outcome") == "success"
        });
        assert_destinations(&events, &peers);
        (
            swapped(&events, "sensor.network.argument_address"),
            events.len(),
        )
    });
}

/// That each of the connects' `events` names as its destination the peer
/// its socket got, in order.
fn assert_destinations(events: &[Value], peers: &[String]) {
    let wrong: Vec<(usize, String, &String)> = events
        .iter()
        .map(|v| end(v, "destination"))
        .zip(peers)
        .enumerate()
        .filter(|(_, (reported, peer))| reported != *peer)
        .map(|(i, (reported, peer))| (i, reported, peer))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} connects named another peer than the socket got (call, named, got): {:?}",
        wrong.len(),
        peers.len(),
        &wrong[..wrong.len().min(5)]
    );
}

/// `ip:port` of the endpoint at `at_` in event `v`.
fn end(v: &Value, at_: &str) -> String {
    format!(
        "{}:{}",
        at(v, &format!("{at_}.ip")).as_str().unwrap_or("?"),
        at(v, &format!("{at_}.port"))
    )
}

/// How many of the connects `events` name, at `field`, the address the
/// sensor read when the call used another one; each must be made of the
/// two the actor swaps, and not be the destination. Made of, not one of:
/// the actor swaps the address whole (one 8-byte store), but the kernel
/// copies user memory a byte at a time (`rep movsb`), so a copy that
/// overlaps a store can hold one's port and the other's IP
/// (`127.0.0.1:40002`, seen in a CI run).
fn swapped(events: &[Value], field: &str) -> usize {
    let mut swapped = 0;
    for v in events {
        if !at(v, field).is_null() {
            swapped += 1;
            let argument = end(v, field);
            assert_ne!(argument, end(v, "destination"), "{v}");
            let (ip, port) = argument.rsplit_once(':').expect("ip:port");
            assert!(
                ["127.0.0.1", "127.0.0.2"].contains(&ip) && ["40001", "40002"].contains(&port),
                "{v}"
            );
        }
    }
    swapped
}

/// An io_uring connect's address is read by the submit hook from the
/// caller's memory, after the kernel copied it when it prepared the
/// request (6.10+; before, the kernel copies it later, when the request
/// runs), and another thread can rewrite it in between. The actor races
/// that on a UDP socket: every completion must name the peer the socket
/// really got, and the rewritten argument where the submission read it.
#[test]
fn an_io_uring_connect_names_the_peer_it_got_even_when_its_address_is_rewritten() {
    let _alone = RACES.lock().unwrap_or_else(|e| e.into_inner());
    let sensor = Sensor::start("");
    until_won("rewritten", || {
        let (actor, peers) = race("io-uring-connect-swapped-addr");
        assert!(!peers.is_empty(), "no connect succeeded");
        let events = sensor.wait_for_count("the connects' completions", peers.len(), |v| {
            action(v) == "io_uring_complete"
                && pid_of(v) == actor
                && at(v, "sensor.io_uring.operation") == "connect"
                && at(v, "event.outcome") == "success"
        });
        assert_destinations(&events, &peers);
        (
            swapped(&events, "sensor.io_uring.argument_address"),
            events.len(),
        )
    });
}

/// setns reads its fd when the kernel does, after the sensor's read at
/// the call's entry, and another thread can put a different file under
/// the fd's number in between (to pass the host's namespace off as
/// another). Every event must name the namespace the caller really ended
/// up in, whatever the fd held when the sensor looked.
#[test]
fn a_setns_names_the_namespace_entered_even_when_its_fd_is_swapped() {
    let _alone = RACES.lock().unwrap_or_else(|e| e.into_inner());
    let sensor = Sensor::start("");
    until_won("swapped", || {
        let (actor, lines) = race("setns-swapped-fd");
        let entered: Vec<u64> = lines
            .iter()
            .map(|l| l.parse().expect("an inode number"))
            .collect();
        assert!(!entered.is_empty(), "no setns succeeded");
        let events = sensor.wait_for_count("the setns calls", entered.len(), |v| {
            action(v) == "namespace_enter"
                && pid_of(v) == actor
                && at(v, "event.outcome") == "success"
        });
        let reported: Vec<u64> = events
            .iter()
            .map(|v| {
                at(v, "sensor.namespace.inode")
                    .as_u64()
                    .unwrap_or_else(|| panic!("no inode: {v}"))
            })
            .collect();
        assert_eq!(
            reported, entered,
            "events name other namespaces than entered"
        );
        let swapped = events
            .iter()
            .filter(|v| !at(v, "sensor.namespace.argument_inode").is_null())
            .count();
        (swapped, events.len())
    });
}

/// pidfd_getfd's pidfd is read by the kernel after the sensor's read at
/// the call's entry, and another thread can put a different pidfd under
/// the fd's number in between. A call through the caller's own pidfd is
/// not reported (nothing crosses a process boundary), so swapping another
/// process's pidfd in after the sensor saw one's own used to hide the
/// theft. Every file taken from the child must be reported, and nothing
/// else.
#[test]
fn a_file_taken_through_a_swapped_pidfd_is_reported() {
    let _alone = RACES.lock().unwrap_or_else(|e| e.into_inner());
    let sensor = Sensor::start("");
    // Each round's actor, its child and the files it took from the child,
    // to count the events once the sensor has stopped.
    let mut rounds = Vec::new();
    until_won("swapped", || {
        let (actor, lines) = race("pidfd-getfd-swapped");
        let mut lines = lines.iter();
        let child: u64 = lines
            .next()
            .and_then(|l| l.parse().ok())
            .expect("the child's pid");
        // A round whose calls all read our own pidfd (the swapping
        // threads lost every race: scheduling on two CPUs) wins nothing,
        // and must report nothing (checked below).
        let from_child = lines.filter(|t| *t == "child").count();
        let events = sensor.wait_for_count("the files taken from the child", from_child, |v| {
            action(v) == "process_fd_copy" && pid_of(v) == actor
        });
        let mut unknown = 0;
        for v in &events {
            assert_eq!(at(v, "event.outcome"), "success", "{v}");
            if at(v, "sensor.process_access.target_unknown") == true {
                unknown += 1;
                assert!(at(v, "sensor.ptrace_target").is_null(), "{v}");
            } else {
                assert_eq!(at(v, "sensor.ptrace_target.pid"), child, "{v}");
            }
        }
        rounds.push((actor, from_child));
        (unknown, from_child)
    });
    let events = sensor.stop();
    for (actor, from_child) in rounds {
        let reported = events
            .iter()
            .filter(|v| action(v) == "process_fd_copy" && pid_of(v) == actor)
            .count();
        assert_eq!(
            reported, from_child,
            "files taken from the child by {actor}: {from_child}, events: {reported}"
        );
    }
}
