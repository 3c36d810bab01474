//! The two random generators Qlib's strategies draw from, reproduced draw for draw:
//!
//! - NumPy's legacy global `RandomState` (`np.random.seed(s)`, `np.random.choice(a, n,
//!   replace=False)`), which TopkDropoutStrategy's `method_sell="random"` and
//!   `method_buy="random"` use;
//! - Python's `random.seed(0)` + `random.shuffle`, with which Qlib's
//!   `generate_order_for_target_amount_position` orders a weight strategy's trades.
//!
//! Both are the Mersenne Twister MT19937; they differ in seeding and in how they turn 32-bit
//! words into bounded integers.

const N: usize = 624;
const M: usize = 397;

/// MT19937, as in NumPy's `mt19937.c` and CPython's `_randommodule.c`.
#[derive(Clone)]
pub struct Mt19937 {
    mt: [u32; N],
    pos: usize,
}

impl std::fmt::Debug for Mt19937 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mt19937").field("pos", &self.pos).finish()
    }
}

impl Mt19937 {
    /// `init_genrand(seed)`: NumPy's legacy seeding of an integer seed.
    pub fn from_seed(seed: u32) -> Mt19937 {
        let mut mt = [0u32; N];
        mt[0] = seed;
        for i in 1..N {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { mt, pos: N }
    }

    /// `init_by_array(key)`: CPython's seeding (`random.seed(0)` uses the key `[0]`).
    pub fn from_key(key: &[u32]) -> Mt19937 {
        let mut s = Mt19937::from_seed(19_650_218);
        let mt = &mut s.mt;
        let key_len = key.len().max(1);
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key_len) {
            let k = key.get(j).copied().unwrap_or(0);
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(k)
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key_len {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        s.pos = N;
        s
    }

    fn refill(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        let mag = |y: u32| if y & 1 == 1 { 0x9908_b0df } else { 0 };
        let mt = &mut self.mt;
        for kk in 0..N - M {
            let y = (mt[kk] & UPPER) | (mt[kk + 1] & LOWER);
            mt[kk] = mt[kk + M] ^ (y >> 1) ^ mag(y);
        }
        for kk in N - M..N - 1 {
            let y = (mt[kk] & UPPER) | (mt[kk + 1] & LOWER);
            mt[kk] = mt[kk + M - N] ^ (y >> 1) ^ mag(y);
        }
        let y = (mt[N - 1] & UPPER) | (mt[0] & LOWER);
        mt[N - 1] = mt[M - 1] ^ (y >> 1) ^ mag(y);
        self.pos = 0;
    }

    /// The next tempered 32-bit word.
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= N {
            self.refill();
        }
        let mut y = self.mt[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}

/// NumPy's legacy `RandomState` (what `np.random.seed` seeds and `np.random.choice` draws from).
#[derive(Debug, Clone)]
pub struct NumpyRandomState(Mt19937);

/// Why `np.random.choice(a, size, replace=False)` raised `ValueError` (before drawing anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChoiceError {
    /// More samples asked than there are candidates (or candidates empty with a sample asked).
    TooFew,
    /// A negative sample size.
    Negative,
}

impl NumpyRandomState {
    /// `np.random.seed(seed)`.
    pub fn new(seed: u32) -> Self {
        NumpyRandomState(Mt19937::from_seed(seed))
    }

    /// NumPy's `random_interval(max)`: a uniform integer in `[0, max]` by masked rejection.
    fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        loop {
            let v = self.0.next_u32() & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `np.random.permutation(n)`: `arange(n)` shuffled from the end (Fisher-Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut x: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.interval(i as u32) as usize;
            x.swap(i, j);
        }
        x
    }

    /// `np.random.choice(range(pop), size, replace=False)`: the first `size` entries of a
    /// permutation of `pop` (drawn even when `size` is 0), or the error NumPy raises.
    pub fn choice_without_replacement(
        &mut self,
        pop: usize,
        size: i64,
    ) -> Result<Vec<usize>, ChoiceError> {
        if pop == 0 && size != 0 {
            return Err(ChoiceError::TooFew);
        }
        if size > pop as i64 {
            return Err(ChoiceError::TooFew);
        }
        if size < 0 {
            return Err(ChoiceError::Negative);
        }
        let mut p = self.permutation(pop);
        p.truncate(size as usize);
        Ok(p)
    }
}

/// The order `random.seed(0); random.shuffle(x)` gives a list of `n` items: result `k` is
/// the original index of the item that ends up at position `k`.
pub fn python_shuffle_seed0(n: usize) -> Vec<usize> {
    let mut g = Mt19937::from_key(&[0]);
    let mut x: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        // `_randbelow_with_getrandbits(i + 1)`.
        let bound = (i + 1) as u32;
        let k = 32 - bound.leading_zeros();
        let j = loop {
            let r = g.next_u32() >> (32 - k);
            if r < bound {
                break r as usize;
            }
        };
        x.swap(i, j);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_words_match_the_reference_generator() {
        // The reference MT19937 (init_genrand(5489)) starts 3499211612, 581869302, ...
        let mut g = Mt19937::from_seed(5489);
        assert_eq!(g.next_u32(), 3_499_211_612);
        assert_eq!(g.next_u32(), 581_869_302);
    }

    #[test]
    fn choice_errors_come_before_any_draw() {
        let mut a = NumpyRandomState::new(3);
        let mut b = NumpyRandomState::new(3);
        assert_eq!(a.choice_without_replacement(2, 3), Err(ChoiceError::TooFew));
        assert_eq!(a.choice_without_replacement(0, 1), Err(ChoiceError::TooFew));
        assert_eq!(
            a.choice_without_replacement(4, -1),
            Err(ChoiceError::Negative)
        );
        assert_eq!(a.permutation(10), b.permutation(10));
    }
}
