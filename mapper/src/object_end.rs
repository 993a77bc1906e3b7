//! Where a JSON object that opens at a given byte ends: the scanner behind the quick routes
//! of [`crate::body_split`] (event bodies) and of the streaming reader (whole top-level
//! objects within one read).
//!
//! [`object_end_bytewise`] defines the answer: it walks the bytes, stepping over string
//! contents eight at a time. On x86-64, [`object_end`] gives the same answer from 64-byte
//! blocks: SSE2 compares (AVX2 where the CPU has it) turn each block into bit masks (quotes,
//! backslashes, brackets, control characters, single quotes); the escaped bytes and the
//! bytes inside strings follow from those masks with a few integer operations (the method of
//! simdjson's string scanner), and only brackets outside strings are looked at one by one.
//! The tests compare the two on every fixture and on random texts built from the bytes that
//! matter.

/// The index of the bracket that closes the object opening at `start`; `None` at a raw
/// control character in a string, a single quote outside strings, or the end of the body.
#[inline]
pub(crate) fn object_end(body: &[u8], start: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        blocks::object_end(body, start)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        object_end_bytewise(body, start)
    }
}

/// [`object_end`] byte by byte (string contents eight bytes per step). A backslash inside a
/// string escapes the byte after it, whatever it is; outside strings it is an ordinary byte.
pub(crate) fn object_end_bytewise(body: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0u32;
    let mut i = start;
    loop {
        match *body.get(i)? {
            b'"' => {
                i += 1;
                loop {
                    i += crate::envelope::plain_string_run(body.get(i..)?);
                    match *body.get(i)? {
                        b'"' => break,
                        // The escaped byte, whatever it is, as the streaming splitter takes it.
                        b'\\' => i += 2,
                        _ => return None,
                    }
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            b'\'' => return None,
            _ => {}
        }
        i += 1;
    }
}

#[cfg(target_arch = "x86_64")]
mod blocks {
    use std::arch::x86_64::{
        __m128i, __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_max_epu8,
        _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8, _mm_cmpeq_epi8, _mm_loadu_si128,
        _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };

    /// The bytes of one 64-byte block that matter, one bit per byte (bit `j`: byte `j`).
    #[derive(Default)]
    struct Masks {
        quote: u64,
        backslash: u64,
        open: u64,
        close: u64,
        /// Bytes below 0x20.
        control: u64,
        single: u64,
    }

    /// [`Masks`] with SSE2 (16 bytes per compare; part of the x86-64 baseline).
    #[inline(always)]
    fn masks_sse2(block: &[u8; 64]) -> Masks {
        let mut m = Masks::default();
        for (k, lane) in block.chunks_exact(16).enumerate() {
            let shift = 16 * k;
            // SAFETY: SSE2 is part of the x86-64 baseline, and the unaligned load reads the
            // 16 bytes of `lane` (`chunks_exact` gives exactly 16).
            unsafe {
                let v: __m128i = _mm_loadu_si128(lane.as_ptr().cast());
                let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
                let bits = |x: __m128i| u64::from(_mm_movemask_epi8(x) as u16) << shift;
                m.quote |= bits(eq(b'"'));
                m.backslash |= bits(eq(b'\\'));
                m.open |= bits(_mm_or_si128(eq(b'{'), eq(b'[')));
                m.close |= bits(_mm_or_si128(eq(b'}'), eq(b']')));
                // Unsigned `v <= 0x1f`: the larger of the two is 0x1f.
                let low = _mm_set1_epi8(0x1f);
                m.control |= bits(_mm_cmpeq_epi8(_mm_max_epu8(v, low), low));
                m.single |= bits(eq(b'\''));
            }
        }
        m
    }

    /// [`Masks`] with AVX2 (32 bytes per compare).
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn masks_avx2(block: &[u8; 64]) -> Masks {
        let mut m = Masks::default();
        for (k, lane) in block.chunks_exact(32).enumerate() {
            let shift = 32 * k;
            // SAFETY: the caller checked for AVX2; the unaligned load reads the 32 bytes of
            // `lane` (`chunks_exact` gives exactly 32).
            let v: __m256i = unsafe { _mm256_loadu_si256(lane.as_ptr().cast()) };
            let eq = |c: u8| _mm256_cmpeq_epi8(v, _mm256_set1_epi8(c as i8));
            let bits = |x: __m256i| u64::from(_mm256_movemask_epi8(x) as u32) << shift;
            m.quote |= bits(eq(b'"'));
            m.backslash |= bits(eq(b'\\'));
            m.open |= bits(_mm256_or_si256(eq(b'{'), eq(b'[')));
            m.close |= bits(_mm256_or_si256(eq(b'}'), eq(b']')));
            let low = _mm256_set1_epi8(0x1f);
            m.control |= bits(_mm256_cmpeq_epi8(_mm256_max_epu8(v, low), low));
            m.single |= bits(eq(b'\''));
        }
        m
    }

    /// Bit `j` set when an odd number of the bits `0..=j` of `x` are set.
    #[inline]
    fn prefix_xor(mut x: u64) -> u64 {
        x ^= x << 1;
        x ^= x << 2;
        x ^= x << 4;
        x ^= x << 8;
        x ^= x << 16;
        x ^= x << 32;
        x
    }

    /// The bytes escaped by a backslash: those after an odd-length run of backslashes.
    /// `carry` is 1 when the previous block ended in a run that escapes this block's first
    /// byte, and is updated for the next block (simdjson's `find_escaped`).
    #[inline]
    fn escaped(backslash: u64, carry: &mut u64) -> u64 {
        const EVEN: u64 = 0x5555_5555_5555_5555;
        let backslash = backslash & !*carry;
        let follows_escape = (backslash << 1) | *carry;
        let odd_starts = backslash & !EVEN & !follows_escape;
        let (even_started, overflow) = odd_starts.overflowing_add(backslash);
        *carry = u64::from(overflow);
        (EVEN ^ (even_started << 1)) & follows_escape
    }

    /// [`super::object_end`] by blocks of 64 bytes (see the module docs).
    ///
    /// Inside strings a backslash escapes the next byte here as in the bytewise scanner. A
    /// backslash outside strings is an ordinary byte there, but would escape the next one
    /// here; invalid JSON either way, and such a body is handed to the bytewise scanner.
    pub(super) fn object_end(body: &[u8], start: usize) -> Option<usize> {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            unsafe { object_end_avx2(body, start) }
        } else {
            object_end_sse2(body, start)
        }
    }

    /// [`object_end`] with SSE2 only.
    pub(super) fn object_end_sse2(body: &[u8], start: usize) -> Option<usize> {
        scan(body, start, masks_sse2)
    }

    /// [`object_end`] with AVX2 (the whole scan compiled for it, so the masks inline).
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn object_end_avx2(body: &[u8], start: usize) -> Option<usize> {
        // SAFETY: the caller checked for AVX2.
        scan(body, start, |block| unsafe { masks_avx2(block) })
    }

    /// The scan of [`object_end`], with the masks of each block from `masks`.
    #[inline(always)]
    fn scan(body: &[u8], start: usize, masks: impl Fn(&[u8; 64]) -> Masks) -> Option<usize> {
        let rest = body.get(start..)?;
        let mut depth = 0u32;
        // All ones when the block starts inside a string.
        let mut in_string_carry = 0u64;
        let mut escape_carry = 0u64;
        let mut block = [0u8; 64];
        for (b, chunk) in rest.chunks(64).enumerate() {
            let valid = if chunk.len() == 64 {
                block.copy_from_slice(chunk);
                u64::MAX
            } else {
                block = [0u8; 64];
                block[..chunk.len()].copy_from_slice(chunk);
                (1u64 << chunk.len()) - 1
            };
            let m = masks(&block);
            let escaped = escaped(m.backslash & valid, &mut escape_carry);
            let quote = m.quote & !escaped & valid;
            // Bit set from an opening quote up to (not including) its closing quote.
            let in_string = prefix_xor(quote) ^ in_string_carry;
            in_string_carry = ((in_string as i64) >> 63) as u64;
            let outside = !in_string & !quote & valid;
            // `in_string` runs on past the end of a last, short block (over its zero padding).
            let stop = (m.control & in_string & !escaped & valid)
                | (m.single & outside)
                | (m.backslash & outside);
            let open = m.open & outside;
            let close = m.close & outside;
            // One step per bracket (a few per block): counting them with `count_ones` costs
            // more without the POPCNT instruction, which the x86-64 baseline lacks.
            let mut events = open | close | stop;
            while events != 0 {
                let j = events.trailing_zeros();
                let bit = 1u64 << j;
                events &= events - 1;
                if stop & bit != 0 {
                    if m.backslash & bit != 0 {
                        return super::object_end_bytewise(body, start);
                    }
                    return None;
                }
                if open & bit != 0 {
                    depth += 1;
                } else {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(start + 64 * b + j as usize);
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::fixture_records;

    /// Every scanner this CPU can run gives the bytewise answer.
    fn agree(body: &[u8], start: usize) {
        let want = object_end_bytewise(body, start);
        let text = || format!("start {start}: {:?}", String::from_utf8_lossy(body));
        assert_eq!(object_end(body, start), want, "{}", text());
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(
                blocks::object_end_sse2(body, start),
                want,
                "SSE2, {}",
                text()
            );
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                let avx2 = unsafe { blocks::object_end_avx2(body, start) };
                assert_eq!(avx2, want, "AVX2, {}", text());
            }
        }
    }

    #[test]
    fn blocks_and_bytes_agree_on_every_fixture_and_its_truncations() {
        let records = fixture_records();
        assert!(records.len() > 50, "{} fixture records", records.len());
        for r in &records {
            let b = r.as_bytes();
            assert!(object_end(b, 0).is_some(), "{r}");
            agree(b, 0);
            // Every prefix, and the record after 0-70 bytes of other text.
            for cut in (0..b.len()).step_by(7) {
                agree(&b[..cut], 0);
            }
            for pad in 0..70 {
                let mut padded = vec![b' '; pad];
                padded.extend_from_slice(b);
                padded.extend_from_slice(b"{\"next\":1}");
                agree(&padded, pad);
            }
        }
    }

    /// Random texts of the bytes that matter (quotes, backslashes, brackets, control
    /// characters, single quotes) among plain ones, long enough to cross several blocks, with
    /// long backslash runs and long strings.
    #[test]
    fn blocks_and_bytes_agree_on_random_texts() {
        let alphabet: &[u8] = b"\"\"\"\\\\{{[}}]]'\x01\n a\xc3\xa9x:,";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut hits = 0;
        for round in 0..40_000 {
            let len = (next() % 300) as usize;
            let mut body = vec![b'{'];
            while body.len() < len {
                let r = next();
                match r % 16 {
                    // A run of backslashes (crossing block edges now and then).
                    0 => body.extend(std::iter::repeat_n(b'\\', (r >> 8) as usize % 70)),
                    // A long plain string.
                    1 => {
                        body.push(b'"');
                        body.extend(std::iter::repeat_n(b'a', (r >> 8) as usize % 90));
                        body.push(b'"');
                    }
                    _ => body.push(alphabet[(r >> 8) as usize % alphabet.len()]),
                }
            }
            // Balanced-ish texts end the object now and then.
            if round % 3 == 0 {
                body.extend_from_slice(b"}}}]]}");
            }
            if object_end_bytewise(&body, 0).is_some() {
                hits += 1;
            }
            agree(&body, 0);
        }
        // Enough of them end an object for the test to cover that outcome.
        assert!(hits > 1_000, "{hits} random texts ended an object");
    }

    #[test]
    fn edge_cases() {
        for (body, want) in [
            (&b"{}"[..], Some(1)),
            (b"{\"a\\\"}\"}", Some(7)),
            (b"{\"a\\\\\"}", Some(6)),
            (b"{\"\x01\"}", None),
            (b"{\"\\\x01\"}", Some(5)),
            (b"{'a':1}", None),
            (b"{\"it's\":1}", Some(9)),
            (b"{\"a\":[1,{\"b\":\"]}\"}]}", Some(19)),
            (b"{\"a\":1", None),
            (b"{\"a\":\"\\", None),
            (b"{\\\"a\":1}", Some(7)),
            (b"", None),
        ] {
            assert_eq!(
                object_end(body, 0),
                want,
                "{:?}",
                String::from_utf8_lossy(body)
            );
            agree(body, 0);
        }
        // Past the end, and a closing bracket first.
        assert_eq!(object_end(b"{}", 5), None);
        assert_eq!(object_end(b"}{}", 0), None);
    }
}
