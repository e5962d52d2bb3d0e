//! The JSON-lines file sink in the running sensor: mode 0600, rotation by
//! size keeping `keep` files, and SIGHUP reopening the path after an
//! outside rotation, with no event lost across either.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sensor_tests::delivery::{is_exec_of, read_jsonl, run_true, sequences, wait_until};
use sensor_tests::{Sensor, scratch_dir};

const WAIT: Duration = Duration::from_secs(90);

fn numbered(p: &Path, n: u32) -> PathBuf {
    PathBuf::from(format!("{}.{n}", p.display()))
}

#[test]
fn rotation_by_size_and_sighup_reopen_lose_nothing() {
    let dir = scratch_dir("delivery-file");
    let file = dir.join("log/events.jsonl");
    let sensor = Sensor::start_in(
        &dir.join("state"),
        &format!(
            "[[sinks]]\nkind = \"file\"\npath = \"{}\"\nrotate_bytes = 200000\nkeep = 50\n",
            file.display()
        ),
    );
    let marker = format!("delivery-file-{}", std::process::id());
    run_true(&marker, 200);
    let all = |file: &Path| {
        let mut v = Vec::new();
        for n in (1..=50).rev() {
            v.extend(read_jsonl(&numbered(file, n)));
        }
        v.extend(read_jsonl(file));
        v
    };
    wait_until("the 200 execs across the rotated files", WAIT, || {
        all(&file).iter().filter(|e| is_exec_of(e, &marker)).count() == 200
    });
    assert!(
        numbered(&file, 1).exists(),
        "600+ events of ~1 KiB rotated at 200 kB"
    );
    assert!(
        std::fs::metadata(numbered(&file, 1))
            .expect("rotated")
            .len()
            <= 200_000 + 64 * 1024
    );
    assert_eq!(
        std::fs::metadata(&file).expect("file").permissions().mode() & 0o777,
        0o600
    );

    // An outside rotation: move the file away, then SIGHUP.
    let moved = dir.join("log/moved.jsonl");
    std::fs::rename(&file, &moved).expect("rename");
    // SAFETY: kill on the sensor, our child.
    unsafe { libc::kill(sensor.pid() as i32, libc::SIGHUP) };
    sensor.wait_for_log("SIGHUP", WAIT);
    let marker2 = format!("{marker}-after-hup");
    run_true(&marker2, 5);
    wait_until("the execs after SIGHUP in the reopened file", WAIT, || {
        read_jsonl(&file)
            .iter()
            .filter(|e| is_exec_of(e, &marker2))
            .count()
            == 5
    });
    sensor.stop();
    let mut events = all(&file);
    events.extend(read_jsonl(&moved));
    let seqs = sequences(&events);
    let max = *seqs.last().expect("events");
    assert_eq!(
        seqs,
        (1..=max).collect(),
        "no sequence number missing across rotations and the reopen"
    );
}
