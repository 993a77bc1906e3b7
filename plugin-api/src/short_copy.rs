//! Copies of short byte strings without a `memcpy` call: at most two fixed-size copies that
//! overlap. `memcpy` branches on the length, and those branches cost more than the copy and
//! are hard to predict when lengths vary from field to field, as they do in records.

/// Copies `src` into the start of `dst` when it holds at most 32 bytes and fits; false,
/// having copied nothing, otherwise.
#[inline]
pub(crate) fn copy_short(dst: &mut [u8], src: &[u8]) -> bool {
    let n = src.len();
    if n > 32 {
        return false;
    }
    let Some(dst) = dst.get_mut(..n) else {
        return false;
    };
    // Where the two copies overlap they write the same bytes.
    match n {
        16..=32 => {
            dst[..16].copy_from_slice(&src[..16]);
            dst[n - 16..].copy_from_slice(&src[n - 16..]);
        }
        8..=15 => {
            dst[..8].copy_from_slice(&src[..8]);
            dst[n - 8..].copy_from_slice(&src[n - 8..]);
        }
        4..=7 => {
            dst[..4].copy_from_slice(&src[..4]);
            dst[n - 4..].copy_from_slice(&src[n - 4..]);
        }
        1..=3 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        _ => {}
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length up to 33 into a larger buffer: exactly the bytes, nothing beyond them.
    #[test]
    fn copies_exactly_every_length() {
        let src: Vec<u8> = (1..=40).collect();
        for n in 0..=33 {
            let mut dst = [0u8; 40];
            let copied = copy_short(&mut dst, &src[..n]);
            assert_eq!(copied, n <= 32, "length {n}");
            if copied {
                assert_eq!(&dst[..n], &src[..n], "length {n}");
                assert!(dst[n..].iter().all(|&b| b == 0), "length {n}");
            } else {
                assert!(dst.iter().all(|&b| b == 0));
            }
        }
        let mut small = [0u8; 4];
        assert!(!copy_short(&mut small, b"abcde"));
        assert_eq!(small, [0; 4]);
    }
}
