//! Key layout helpers. Every tenant-owned key starts with the tenant id and
//! a separator, so a prefix scan can never cross into another tenant.

/// Separates key parts; ids never contain it.
pub const SEP: u8 = 0x1f;

/// `part ␟ part ␟ …` as bytes.
pub fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            key.push(SEP);
        }
        key.extend_from_slice(p);
    }
    key
}

/// The tenant's prefix for a scan: `tenant ␟`.
pub fn tenant_prefix(tenant: &str) -> Vec<u8> {
    let mut key = tenant.as_bytes().to_vec();
    key.push(SEP);
    key
}

/// `prefix ␟` — the prefix for everything under a composite key.
pub fn prefix(parts: &[&[u8]]) -> Vec<u8> {
    let mut key = join(parts);
    key.push(SEP);
    key
}

/// Big-endian so byte order is numeric order.
pub fn be(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// A signed millisecond timestamp as order-preserving bytes.
pub fn ts(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

/// The inverse of [`ts`].
pub fn read_ts(bytes: &[u8]) -> Option<i64> {
    read_be(bytes).map(|n| (n ^ (1 << 63)) as i64)
}

pub fn read_be(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// A big-endian number that ends a key. Binary parts can contain the
/// separator byte, so fixed-width suffixes are read by length, never split.
pub fn trailing_be(key: &[u8]) -> Option<u64> {
    read_be(key.get(key.len().checked_sub(8)?..)?)
}

/// The last part of a composite key whose parts are text ids.
pub fn last_part(key: &[u8]) -> &[u8] {
    match key.iter().rposition(|&b| b == SEP) {
        Some(i) => &key[i + 1..],
        None => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_sort_numerically() {
        assert!(ts(-5) < ts(0));
        assert!(ts(0) < ts(1_764_000_000_000));
        for t in [-5, 0, 1_764_000_000_000] {
            assert_eq!(read_ts(&ts(t)), Some(t));
        }
    }

    #[test]
    fn numbers_containing_the_separator_byte_round_trip() {
        for n in [31u64, 0x1f1f, 287, u64::MAX] {
            assert_eq!(trailing_be(&join(&[b"t", &be(n)])), Some(n));
        }
    }

    #[test]
    fn tenant_prefixes_do_not_overlap() {
        let a = join(&[b"t1", b"x"]);
        assert!(a.starts_with(&tenant_prefix("t1")));
        assert!(!a.starts_with(&tenant_prefix("t")));
        assert_eq!(last_part(&a), b"x");
    }
}
