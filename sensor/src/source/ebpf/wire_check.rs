//! Proof that both sides agree on the wire format.
//!
//! sensor-common is compiled twice, for bpfel-unknown-none and for the
//! host. This test reads the BTF that bpf-linker wrote into the built
//! object (the kernel side's own view of each struct) and checks every
//! wire struct's size and field offsets against this side's layout.

use btf_rs::{Btf, Type};
use sensor_common::{
    CredEvent, EventHeader, ExeKey, ExecEvent, ExitEvent, FileEvent, ForkEvent, KernelOffsets,
    NetEvent, PathPrefix, ProbeConfig, SysEvent, TaskInfo, WatchEvent,
};

use super::EBPF_OBJECT;

fn object_btf() -> Btf {
    use object::{Object, ObjectSection};
    assert!(
        !EBPF_OBJECT.is_empty(),
        "the eBPF object was not built (AYA_BUILD_SKIP?): build with `cargo xtask build`"
    );
    let obj = object::File::parse(EBPF_OBJECT).expect("the eBPF object is ELF");
    let section = obj
        .section_by_name(".BTF")
        .expect("the eBPF object carries BTF (-C link-arg=--btf)");
    Btf::from_bytes(section.data().expect("BTF section data")).expect("BTF parses")
}

/// (size, [(member name, byte offset)]) of struct `name` in the object's BTF.
fn layout(btf: &Btf, name: &str) -> (usize, Vec<(String, usize)>) {
    let types = btf.resolve_types_by_name(name).unwrap_or_default();
    let s = types
        .iter()
        .find_map(|t| match t {
            Type::Struct(s) => Some(s),
            _ => None,
        })
        .unwrap_or_else(|| panic!("struct {name} is not in the eBPF object's BTF"));
    let members = s
        .members
        .iter()
        .map(|m| {
            (
                btf.resolve_name(m).unwrap_or_default(),
                (m.bit_offset() / 8) as usize,
            )
        })
        .collect();
    (s.size(), members)
}

macro_rules! assert_same_layout {
    ($btf:expr, $ty:ty, [$($field:ident),+ $(,)?]) => {{
        let name = stringify!($ty);
        let (size, members) = layout(&$btf, name);
        assert_eq!(size, core::mem::size_of::<$ty>(), "size of {name}");
        let ours: Vec<(String, usize)> =
            vec![$((stringify!($field).to_owned(), core::mem::offset_of!($ty, $field))),+];
        assert_eq!(members, ours, "fields and offsets of {name} (kernel side vs userspace)");
    }};
}

#[test]
fn wire_structs_match_the_ebpf_object() {
    let btf = object_btf();
    assert_same_layout!(btf, EventHeader, [kind, size, boot_ns]);
    assert_same_layout!(
        btf,
        TaskInfo,
        [
            tgid,
            tid,
            ppid,
            uid,
            gid,
            euid,
            egid,
            suid,
            sgid,
            fsuid,
            fsgid,
            loginuid,
            sessionid,
            flags,
            start_boottime,
            parent_start_boottime,
            cgroup_id,
            cap_permitted,
            cap_effective,
            comm,
            tty
        ]
    );
    assert_same_layout!(
        btf,
        ExecEvent,
        [
            header, task, flags, argv_total, argv_len, exe_len, cwd_len, cgroup_len
        ]
    );
    assert_same_layout!(btf, ForkEvent, [header, task]);
    assert_same_layout!(btf, ExitEvent, [header, task, exit_status, _pad0]);
    assert_same_layout!(btf, ProbeConfig, [sensor_tgid, filters, features]);
    assert_same_layout!(btf, ExeKey, [ino, dev, _pad0]);
    assert_same_layout!(btf, PathPrefix, [len, _pad0, bytes]);
    assert_same_layout!(
        btf,
        FileEvent,
        [
            header, task, op, flags, ret, fd, at_flags, mode, uid, gid, old_mode, old_uid, old_gid,
            dev, nlink, ino, path_len, base_len, name_len, value_len, value_size, _pad1
        ]
    );
    assert_same_layout!(
        btf,
        NetEvent,
        [
            header,
            task,
            op,
            fd,
            ret,
            family,
            protocol,
            sock_type,
            flags,
            arg,
            sockaddr_len,
            local_addr,
            remote_addr,
            local_port,
            remote_port,
            kernel_sockaddr_len,
            sockaddr,
            kernel_sockaddr
        ]
    );
    assert_same_layout!(
        btf,
        SysEvent,
        [header, task, op, flags, ret, args, str_lens, base_len]
    );
    assert_same_layout!(
        btf,
        WatchEvent,
        [
            header, task, op, flags, ret, open_flags, fd, path_len, base_len, path2_len, base2_len,
            fd2, matched
        ]
    );
    assert_same_layout!(
        btf,
        CredEvent,
        [
            header, task, op, _pad0, ret, args, _pad1, old_ids, old_caps, new_caps
        ]
    );
    let (size, members) = layout(&btf, "KernelOffsets");
    assert_eq!(size, core::mem::size_of::<KernelOffsets>());
    assert_eq!(members.len(), size / 4, "KernelOffsets is all u32 fields");
    assert_eq!(members.last().map(|m| m.0.as_str()), Some("ns_common_inum"));
}
