//! Lower-case hex, for digests (cache keys, pack archives) and tokens.

/// `bytes` as lower-case hex, two digits each.
pub fn encode(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_digits_per_byte() {
        assert_eq!(super::encode(&[0, 0xab, 7]), "00ab07");
    }
}
