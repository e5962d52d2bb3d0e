//! Name-based lookups in BTF: a struct by name, the byte offset of one of its
//! members (also when the member sits inside anonymous structs and unions),
//! an enumerator's value. Only what `offsets.rs` needs, over btf-rs.

use std::path::Path;

use btf_rs::{Backend, Btf, Member, Struct, Type};

/// Opens a BTF file, preferring to mmap it: resolving our ~20 structs then
/// costs a few MB and milliseconds, where the cached backend parses the whole
/// vmlinux (~40 MB peak RSS, ~130 ms, measured on 6.18). `/sys/kernel/btf/vmlinux`
/// can be mmapped only since Linux 6.16; before that (and on any file that refuses
/// it) we read it into memory instead.
pub(super) fn open(path: &Path) -> btf_rs::Result<Btf> {
    Btf::from_file_with_backend(path, Backend::Mmap).or_else(|mmap_err| {
        tracing::debug!(
            "cannot mmap {} ({mmap_err}); reading it instead",
            path.display()
        );
        Btf::from_file(path)
    })
}

/// Where a member was found, in bits from the start of the outer struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct MemberAt {
    pub bits: u32,
    /// A bitfield (or a member not starting on a byte): the eBPF side reads
    /// whole bytes at an offset, so it cannot use it.
    pub bitfield: bool,
}

/// Every struct (not union, not forward declaration) named `name`. Usually
/// one; vmlinux BTF can hold two same-named structs from different headers.
pub(super) fn structs_named(btf: &Btf, name: &str) -> btf_rs::Result<Vec<Struct>> {
    Ok(btf
        .resolve_types_by_name(name)?
        .into_iter()
        .filter_map(|t| match t {
            Type::Struct(s) => Some(s),
            _ => None,
        })
        .collect())
}

/// Anonymous members nest a handful of levels at most (qstr: union →
/// struct); the bound only stops a malformed BTF from recursing forever.
const MAX_ANON_DEPTH: u32 = 8;

/// Finds member `name` in `s`, descending into anonymous struct and union
/// members, because that is how C flattens them: `mm->arg_start` is written
/// as a direct member although recent kernels put it in an anonymous struct.
/// Offsets add up along the way.
pub(super) fn member(btf: &Btf, s: &Struct, name: &str) -> btf_rs::Result<Option<MemberAt>> {
    member_at_depth(btf, s, name, 0)
}

fn member_at_depth(
    btf: &Btf,
    s: &Struct,
    name: &str,
    depth: u32,
) -> btf_rs::Result<Option<MemberAt>> {
    if depth > MAX_ANON_DEPTH {
        return Ok(None);
    }
    for m in &s.members {
        let member_name = btf.resolve_name(m)?;
        if member_name == name {
            return Ok(Some(MemberAt {
                bits: m.bit_offset(),
                bitfield: is_bitfield(m),
            }));
        }
        // C forbids a name to appear twice once anonymous members are
        // flattened, so the first match is the only one.
        // (No let-chains: the workspace's rust-version is 1.87.)
        if !member_name.is_empty() {
            continue;
        }
        if let Some(inner) = aggregate(btf, btf.resolve_chained_type(m)?)? {
            if let Some(found) = member_at_depth(btf, &inner, name, depth + 1)? {
                return Ok(Some(MemberAt {
                    bits: m.bit_offset() + found.bits,
                    bitfield: found.bitfield,
                }));
            }
        }
    }
    Ok(None)
}

/// Bitfields are marked in BTF by the struct's kind_flag, with the width in
/// the member's offset word; that is how pahole encodes the kernel's. The
/// older encoding keeps the width only in the member's INT type, which
/// btf-rs does not expose, so there we catch a bitfield only when it does
/// not start on a byte boundary. None of our fields is a bitfield; this
/// guards against a future kernel making one of them one.
fn is_bitfield(m: &Member) -> bool {
    m.bitfield_size().is_some_and(|bits| bits != 0) || !m.bit_offset().is_multiple_of(8)
}

/// The struct or union a member's type denotes, past typedefs and
/// qualifiers (anonymous members are plain struct/union types in practice;
/// the rest is for robustness).
fn aggregate(btf: &Btf, mut t: Type) -> btf_rs::Result<Option<Struct>> {
    for _ in 0..MAX_ANON_DEPTH {
        t = match t {
            Type::Struct(s) | Type::Union(s) => return Ok(Some(s)),
            Type::Typedef(x) => btf.resolve_chained_type(&x)?,
            Type::Const(x) | Type::Volatile(x) | Type::Restrict(x) => {
                btf.resolve_chained_type(&x)?
            }
            Type::TypeTag(x) => btf.resolve_chained_type(&x)?,
            _ => return Ok(None),
        };
    }
    Ok(None)
}

/// Every enumerator of `enum enum_name` (32- or 64-bit), by name.
pub(super) fn enumerators(btf: &Btf, enum_name: &str) -> btf_rs::Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for t in btf.resolve_types_by_name(enum_name)? {
        match t {
            Type::Enum(e) => {
                for m in &e.members {
                    out.push((btf.resolve_name(m)?, u64::from(m.val())));
                }
            }
            Type::Enum64(e) => {
                for m in &e.members {
                    out.push((btf.resolve_name(m)?, m.val()));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Builds BTF blobs by hand, so tests can describe kernels we do not run:
/// an old one, one without a field, one with odd nesting.
#[cfg(test)]
pub(super) mod testing {
    const BTF_MAGIC: u16 = 0xeb9f;
    const KIND_INT: u32 = 1;
    const KIND_STRUCT: u32 = 4;
    const KIND_UNION: u32 = 5;
    const KIND_ENUM: u32 = 6;
    const KIND_TYPEDEF: u32 = 8;
    const KIND_PTR: u32 = 2;
    const KIND_FUNC: u32 = 12;
    const KIND_FUNC_PROTO: u32 = 13;

    /// One member: name ("" for anonymous), type id, bit offset, and a
    /// bitfield width (0: not a bitfield).
    pub struct M<'a>(pub &'a str, pub u32, pub u32, pub u32);

    pub struct BtfBuilder {
        types: Vec<u8>,
        strings: Vec<u8>,
        next_id: u32,
    }

    impl BtfBuilder {
        pub fn new() -> Self {
            // String offset 0 is the empty name, by the format's definition.
            BtfBuilder {
                types: Vec::new(),
                strings: vec![0],
                next_id: 1,
            }
        }

        fn string(&mut self, s: &str) -> u32 {
            if s.is_empty() {
                return 0;
            }
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(s.as_bytes());
            self.strings.push(0);
            off
        }

        fn header(
            &mut self,
            name: &str,
            kind: u32,
            kind_flag: bool,
            vlen: usize,
            size_or_type: u32,
        ) -> u32 {
            let name_off = self.string(name);
            let info = (u32::from(kind_flag) << 31) | (kind << 24) | vlen as u32;
            for word in [name_off, info, size_or_type] {
                self.types.extend_from_slice(&word.to_le_bytes());
            }
            let id = self.next_id;
            self.next_id += 1;
            id
        }

        /// An unsigned INT of `size` bytes, all bits used.
        pub fn int(&mut self, name: &str, size: u32) -> u32 {
            let id = self.header(name, KIND_INT, false, 0, size);
            self.types.extend_from_slice(&(size * 8).to_le_bytes());
            id
        }

        pub fn typedef(&mut self, name: &str, target: u32) -> u32 {
            self.header(name, KIND_TYPEDEF, false, 0, target)
        }

        pub fn strukt(&mut self, name: &str, size: u32, members: &[M]) -> u32 {
            self.aggregate(KIND_STRUCT, name, size, members)
        }

        pub fn union(&mut self, name: &str, size: u32, members: &[M]) -> u32 {
            self.aggregate(KIND_UNION, name, size, members)
        }

        fn aggregate(&mut self, kind: u32, name: &str, size: u32, members: &[M]) -> u32 {
            // kind_flag set means "offset words carry bitfield sizes", the
            // encoding pahole uses whenever a struct has a bitfield.
            let kind_flag = members.iter().any(|m| m.3 != 0);
            let id = self.header(name, kind, kind_flag, members.len(), size);
            for M(member_name, type_id, bits, bitfield) in members {
                let name_off = self.string(member_name);
                let offset = if kind_flag {
                    (bitfield << 24) | bits
                } else {
                    *bits
                };
                for word in [name_off, *type_id, offset] {
                    self.types.extend_from_slice(&word.to_le_bytes());
                }
            }
            id
        }

        pub fn enumeration(&mut self, name: &str, values: &[(&str, u32)]) -> u32 {
            let id = self.header(name, KIND_ENUM, false, values.len(), 4);
            for (variant, value) in values {
                let name_off = self.string(variant);
                self.types.extend_from_slice(&name_off.to_le_bytes());
                self.types.extend_from_slice(&value.to_le_bytes());
            }
            id
        }

        /// A function `name(params…)`: a FUNC_PROTO and the FUNC naming it.
        pub fn function(&mut self, name: &str, params: &[(&str, u32)]) -> u32 {
            let proto = self.header("", KIND_FUNC_PROTO, false, params.len(), 0);
            for (param, type_id) in params {
                let name_off = self.string(param);
                self.types.extend_from_slice(&name_off.to_le_bytes());
                self.types.extend_from_slice(&type_id.to_le_bytes());
            }
            self.header(name, KIND_FUNC, false, 0, proto)
        }

        /// A pointer to type `target` (0: void).
        pub fn ptr(&mut self, target: u32) -> u32 {
            self.header("", KIND_PTR, false, 0, target)
        }

        /// Tracepoint `name`'s typedef as the kernel declares it:
        /// `btf_trace_<name>`, a pointer to a prototype whose first
        /// parameter is the probe's `void *__data`, then `args`.
        pub fn tracepoint(&mut self, name: &str, args: &[u32]) -> u32 {
            let data = self.ptr(0);
            let params: Vec<(&str, u32)> = std::iter::once(("__data", data))
                .chain(args.iter().map(|a| ("", *a)))
                .collect();
            let proto = self.header("", KIND_FUNC_PROTO, false, params.len(), 0);
            for (param, type_id) in params {
                let name_off = self.string(param);
                self.types.extend_from_slice(&name_off.to_le_bytes());
                self.types.extend_from_slice(&type_id.to_le_bytes());
            }
            let ptr = self.ptr(proto);
            self.typedef(&format!("btf_trace_{name}"), ptr)
        }

        /// The blob: header, then the type section, then the strings.
        pub fn build(&self) -> Vec<u8> {
            const HDR_LEN: u32 = 24;
            let mut out = Vec::new();
            out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
            out.push(1); // version
            out.push(0); // flags
            let type_len = self.types.len() as u32;
            for word in [HDR_LEN, 0, type_len, type_len, self.strings.len() as u32] {
                out.extend_from_slice(&word.to_le_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }

        pub fn btf(&self) -> btf_rs::Btf {
            btf_rs::Btf::from_bytes(&self.build()).expect("the hand-built BTF parses")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{BtfBuilder, M};
    use super::*;

    fn only_struct(btf: &Btf, name: &str) -> Struct {
        let mut found = structs_named(btf, name).expect("lookup");
        assert_eq!(found.len(), 1, "one struct {name}");
        found.pop().expect("one")
    }

    #[test]
    fn members_inside_anonymous_unions_and_structs_add_their_offsets() {
        // struct qstr { union { struct { u32 hash; u32 len; }; u64 hash_len; }; const char *name; }
        // placed at a non-zero offset inside an outer anonymous struct, so
        // that a resolver that forgot to add the outer offset would fail.
        let mut b = BtfBuilder::new();
        let u32_t = b.int("u32", 4);
        let u64_t = b.int("u64", 8);
        let hash_len = b.strukt("", 8, &[M("hash", u32_t, 0, 0), M("len", u32_t, 32, 0)]);
        let union = b.union("", 8, &[M("", hash_len, 0, 0), M("hash_len", u64_t, 0, 0)]);
        let inner = b.strukt(
            "",
            24,
            &[
                M("pad", u64_t, 0, 0),
                M("", union, 64, 0),
                M("name", u64_t, 128, 0),
            ],
        );
        b.strukt("qstr", 32, &[M("first", u64_t, 0, 0), M("", inner, 64, 0)]);
        let btf = b.btf();
        let qstr = only_struct(&btf, "qstr");
        let at = |name| member(&btf, &qstr, name).expect("lookup");
        assert_eq!(
            at("first"),
            Some(MemberAt {
                bits: 0,
                bitfield: false
            })
        );
        assert_eq!(
            at("len"),
            Some(MemberAt {
                bits: 64 + 64 + 32,
                bitfield: false
            })
        );
        assert_eq!(
            at("hash_len"),
            Some(MemberAt {
                bits: 128,
                bitfield: false
            })
        );
        assert_eq!(
            at("name"),
            Some(MemberAt {
                bits: 64 + 128,
                bitfield: false
            })
        );
        assert_eq!(at("absent"), None);
    }

    #[test]
    fn a_named_member_of_struct_type_is_not_searched() {
        // Only anonymous members are flattened by C; `d_name.len` is not a
        // member of dentry.
        let mut b = BtfBuilder::new();
        let u32_t = b.int("u32", 4);
        let q = b.strukt("qstr", 8, &[M("len", u32_t, 32, 0)]);
        b.strukt(
            "dentry",
            16,
            &[M("d_flags", u32_t, 0, 0), M("d_name", q, 64, 0)],
        );
        let btf = b.btf();
        let dentry = only_struct(&btf, "dentry");
        assert_eq!(member(&btf, &dentry, "len").expect("lookup"), None);
        assert_eq!(
            member(&btf, &dentry, "d_name")
                .expect("lookup")
                .map(|m| m.bits),
            Some(64)
        );
    }

    #[test]
    fn bitfields_and_unaligned_members_are_flagged() {
        let mut b = BtfBuilder::new();
        let u32_t = b.int("u32", 4);
        b.strukt(
            "flags",
            8,
            &[
                M("a", u32_t, 0, 3),
                M("b", u32_t, 3, 5),
                M("whole", u32_t, 32, 0),
            ],
        );
        let btf = b.btf();
        let s = only_struct(&btf, "flags");
        assert!(
            member(&btf, &s, "a")
                .expect("lookup")
                .expect("found")
                .bitfield
        );
        assert!(
            member(&btf, &s, "b")
                .expect("lookup")
                .expect("found")
                .bitfield
        );
        assert_eq!(
            member(&btf, &s, "whole").expect("lookup"),
            Some(MemberAt {
                bits: 32,
                bitfield: false
            })
        );
    }

    #[test]
    fn anonymous_members_behind_a_typedef_are_searched() {
        let mut b = BtfBuilder::new();
        let u64_t = b.int("u64", 8);
        let anon = b.strukt(
            "",
            16,
            &[M("arg_start", u64_t, 0, 0), M("arg_end", u64_t, 64, 0)],
        );
        let td = b.typedef("args_t", anon);
        b.strukt("mm_struct", 32, &[M("", td, 128, 0)]);
        let btf = b.btf();
        let mm = only_struct(&btf, "mm_struct");
        assert_eq!(
            member(&btf, &mm, "arg_end")
                .expect("lookup")
                .map(|m| m.bits),
            Some(192)
        );
    }

    #[test]
    fn unions_and_forward_declarations_are_not_structs() {
        let mut b = BtfBuilder::new();
        let u32_t = b.int("u32", 4);
        b.union("thing", 4, &[M("x", u32_t, 0, 0)]);
        b.strukt("thing", 8, &[M("x", u32_t, 32, 0)]);
        let btf = b.btf();
        let s = only_struct(&btf, "thing");
        assert_eq!(
            member(&btf, &s, "x").expect("lookup").map(|m| m.bits),
            Some(32)
        );
        assert!(structs_named(&btf, "nothing").expect("lookup").is_empty());
    }

    #[test]
    fn enumerators_by_name() {
        let mut b = BtfBuilder::new();
        b.enumeration(
            "cgroup_subsys_id",
            &[("cpuset_cgrp_id", 0), ("memory_cgrp_id", 4)],
        );
        let btf = b.btf();
        let all = enumerators(&btf, "cgroup_subsys_id").expect("lookup");
        assert_eq!(
            all,
            [
                ("cpuset_cgrp_id".to_string(), 0),
                ("memory_cgrp_id".to_string(), 4)
            ]
        );
        assert!(
            enumerators(&btf, "no_such_enum")
                .expect("lookup")
                .is_empty()
        );
    }

    #[test]
    fn a_file_that_is_not_btf_is_an_error() {
        let path = std::env::temp_dir().join(format!("sensor-not-btf-{}", std::process::id()));
        std::fs::write(&path, b"definitely not BTF, just some bytes").expect("write temp file");
        let result = open(&path);
        std::fs::remove_file(&path).ok();
        assert!(result.is_err(), "garbage must not parse as BTF");
    }
}

/// The position of parameter `param` of kernel function `func`, if the
/// kernel has that function with a parameter of that name. Hooks on
/// functions whose signature changed across kernels (security_inode_setattr
/// gained an idmap argument in 5.12) read their arguments at these
/// positions.
pub(super) fn func_param_index(btf: &Btf, func: &str, param: &str) -> btf_rs::Result<Option<u32>> {
    for t in btf.resolve_types_by_name(func).unwrap_or_default() {
        let btf_rs::Type::Func(f) = t else { continue };
        let btf_rs::Type::FuncProto(proto) = btf.resolve_chained_type(&f)? else {
            continue;
        };
        for (i, p) in proto.parameters.iter().enumerate() {
            if btf.resolve_name(p)? == param {
                return Ok(Some(i as u32));
            }
        }
    }
    Ok(None)
}

/// What each argument of tracepoint `tracepoint` is, as its BTF typedef
/// (`btf_trace_<tracepoint>`, the prototype of its probe without the
/// leading `void *__data`) says: `struct <name>` for a pointer to a
/// struct, the type's name for a named integer or typedef (`u8`), "" for
/// anything else. None if the kernel has no such tracepoint. The
/// io_uring hook reads its request or its opcode at the position found
/// here: both moved between kernels.
pub(super) fn tracepoint_args(btf: &Btf, tracepoint: &str) -> btf_rs::Result<Option<Vec<String>>> {
    let types = btf
        .resolve_types_by_name(&format!("btf_trace_{tracepoint}"))
        .unwrap_or_default();
    for t in types {
        let btf_rs::Type::Typedef(typedef) = t else {
            continue;
        };
        let btf_rs::Type::Ptr(ptr) = btf.resolve_chained_type(&typedef)? else {
            continue;
        };
        let btf_rs::Type::FuncProto(proto) = btf.resolve_chained_type(&ptr)? else {
            continue;
        };
        let mut args = Vec::new();
        for p in proto.parameters.iter().skip(1) {
            let arg = match btf.resolve_chained_type(p)? {
                btf_rs::Type::Ptr(to) => match btf.resolve_chained_type(&to) {
                    Ok(btf_rs::Type::Struct(s)) => format!("struct {}", btf.resolve_name(&s)?),
                    _ => String::new(),
                },
                btf_rs::Type::Typedef(t) => btf.resolve_name(&t)?,
                btf_rs::Type::Int(i) => btf.resolve_name(&i)?,
                _ => String::new(),
            };
            args.push(arg);
        }
        return Ok(Some(args));
    }
    Ok(None)
}
