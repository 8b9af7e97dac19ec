//! A fast streaming 64-bit hash for the streaming check: four independent multiply-rotate
//! lanes over 32-byte blocks (several GB/s, so the load generator's core is not spent on
//! hashing). Not cryptographic; it detects lost, duplicated, reordered or altered bytes.

const K: [u64; 4] = [
    0x9E37_79B9_7F4A_7C15,
    0xC2B2_AE3D_27D4_EB4F,
    0x1656_67B1_9E37_79F9,
    0x85EB_CA77_C2B2_AE63,
];

/// The streaming hasher: the result does not depend on how the input is split.
pub struct Hasher {
    lanes: [u64; 4],
    buf: [u8; 32],
    buf_len: usize,
    total: u64,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher {
            lanes: K,
            buf: [0; 32],
            buf_len: 0,
            total: 0,
        }
    }
}

impl Hasher {
    fn block(lanes: &mut [u64; 4], block: &[u8]) {
        for (i, lane) in lanes.iter_mut().enumerate() {
            let w = u64::from_le_bytes(block[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            *lane = (*lane ^ w).wrapping_mul(K[i]).rotate_left(29);
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.buf_len > 0 {
            let take = (32 - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
            if self.buf_len < 32 {
                return;
            }
            let buf = self.buf;
            Self::block(&mut self.lanes, &buf);
            self.buf_len = 0;
        }
        let mut blocks = data.chunks_exact(32);
        for block in &mut blocks {
            Self::block(&mut self.lanes, block);
        }
        let rest = blocks.remainder();
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
    }

    pub fn finish(&self) -> u64 {
        let mut h = self.total.wrapping_mul(K[0]);
        for (i, lane) in self.lanes.iter().enumerate() {
            h = (h ^ lane.rotate_left(i as u32 * 13)).wrapping_mul(K[3]);
        }
        for &b in &self.buf[..self.buf_len] {
            h = (h ^ u64::from(b)).wrapping_mul(K[1]).rotate_left(17);
        }
        h ^ (h >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::Hasher;

    #[test]
    fn splitting_does_not_change_the_hash() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 253) as u8).collect();
        let mut whole = Hasher::default();
        whole.update(&data);
        for step in [1, 3, 31, 32, 33, 500] {
            let mut parts = Hasher::default();
            for chunk in data.chunks(step) {
                parts.update(chunk);
            }
            assert_eq!(parts.finish(), whole.finish(), "step {step}");
        }
        let mut other = data.clone();
        other.swap(10, 500);
        let mut h = Hasher::default();
        h.update(&other);
        assert_ne!(h.finish(), whole.finish());
    }
}
