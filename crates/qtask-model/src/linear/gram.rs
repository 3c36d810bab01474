//! The Gram matrix of the design augmented with the label, accumulated in one blocked pass
//! over the f32 rows (AVX2+FMA tiles where the CPU has them).

use super::Centre;

/// `AᵀA`, `Aᵀy` and `yᵀy` of the design `A` (features, centred or not, plus an optional column
/// of ones).
pub(super) struct Gram {
    pub(super) p: usize,
    pub(super) xtx: Vec<f64>,
    pub(super) xty: Vec<f64>,
    pub(super) yty: f64,
}

/// Rows per deterministic partial sum; partials are added in block order so the result does not
/// depend on the number of threads.
pub(super) const MIN_BLOCK_ROWS: usize = 8192;
pub(super) const MAX_BLOCKS: usize = 64;
/// Rows converted to f64 at a time (the buffer stays in L2).
pub(super) const CHUNK_ROWS: usize = 128;
pub(super) const TILE_I: usize = 4;
pub(super) const TILE_J: usize = 8;

impl Gram {
    pub(super) fn build(
        x: &[f32],
        p: usize,
        y: &[f32],
        rows: &[usize],
        centre: Option<&Centre>,
        ones: bool,
    ) -> Gram {
        // Augmented columns: features, [ones], label — one symmetric product gives everything.
        let pa = p + usize::from(ones);
        let m = pa + 1;
        let mp = m.div_ceil(TILE_J) * TILE_J;
        let block = MIN_BLOCK_ROWS.max(rows.len().div_ceil(MAX_BLOCKS));
        let blocks: Vec<&[usize]> = rows.chunks(block).collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .min(blocks.len())
            .max(1);
        let spec = GramSpec {
            x,
            p,
            y,
            centre,
            ones,
            mp,
        };
        let mut partials: Vec<Vec<f64>> = vec![Vec::new(); blocks.len()];
        if threads == 1 {
            for (b, rs) in blocks.iter().enumerate() {
                partials[b] = spec.block(rs);
            }
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let blocks = &blocks;
                        let spec = &spec;
                        s.spawn(move || {
                            (t..blocks.len())
                                .step_by(threads)
                                .map(|b| (b, spec.block(blocks[b])))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                for h in handles {
                    for (b, g) in h.join().expect("Gram worker panicked") {
                        partials[b] = g;
                    }
                }
            });
        }
        let mut full = vec![0.0f64; mp * mp];
        for part in &partials {
            for (f, v) in full.iter_mut().zip(part) {
                *f += v;
            }
        }
        // Tiles fill the upper triangle (and a little more); mirror it.
        let mut xtx = vec![0.0; pa * pa];
        for i in 0..pa {
            for j in i..pa {
                let v = full[i * mp + j];
                xtx[i * pa + j] = v;
                xtx[j * pa + i] = v;
            }
        }
        let xty = (0..pa).map(|i| full[i * mp + pa]).collect();
        Gram {
            p: pa,
            xtx,
            xty,
            yty: full[pa * mp + pa],
        }
    }
}

pub(super) struct GramSpec<'a> {
    pub(super) x: &'a [f32],
    pub(super) p: usize,
    pub(super) y: &'a [f32],
    pub(super) centre: Option<&'a Centre>,
    pub(super) ones: bool,
    pub(super) mp: usize,
}

impl GramSpec<'_> {
    /// The (upper-triangle tiles of the) augmented Gram matrix of one block of rows.
    fn block(&self, rows: &[usize]) -> Vec<f64> {
        let (p, mp) = (self.p, self.mp);
        let m = p + usize::from(self.ones) + 1;
        let mut out = vec![0.0f64; mp * mp];
        // Panel layout: columns in groups of TILE_J, each group stored row after row, so a tile
        // streams two small contiguous panels that stay in L1.
        let panel = CHUNK_ROWS * TILE_J;
        let mut buf = vec![0.0f64; mp / TILE_J * panel];
        let mut row = vec![0.0f64; mp];
        let fma = has_fma();
        for chunk in rows.chunks(CHUNK_ROWS) {
            let k = chunk.len();
            for (t, &r) in chunk.iter().enumerate() {
                let src = &self.x[r * p..(r + 1) * p];
                match self.centre {
                    Some(c) => {
                        for j in 0..p {
                            row[j] = f64::from(src[j]) - c.x[j];
                        }
                        row[m - 1] = f64::from(self.y[r]) - c.y;
                    }
                    None => {
                        for j in 0..p {
                            row[j] = f64::from(src[j]);
                        }
                        row[m - 1] = f64::from(self.y[r]);
                    }
                }
                if self.ones {
                    row[p] = 1.0;
                }
                for (g, vals) in row.chunks_exact(TILE_J).enumerate() {
                    buf[g * panel + t * TILE_J..g * panel + (t + 1) * TILE_J].copy_from_slice(vals);
                }
            }
            for i0 in (0..m).step_by(TILE_I) {
                let gi = i0 / TILE_J;
                let pa = &buf[gi * panel..gi * panel + k * TILE_J];
                for j0 in (gi * TILE_J..m).step_by(TILE_J) {
                    let gj = j0 / TILE_J;
                    let pb = &buf[gj * panel..gj * panel + k * TILE_J];
                    let acc = tile(fma, pa, i0 % TILE_J, pb);
                    for (u, accu) in acc.iter().enumerate() {
                        let o = &mut out[(i0 + u) * mp + j0..(i0 + u) * mp + j0 + TILE_J];
                        for (ov, av) in o.iter_mut().zip(accu) {
                            *ov += av;
                        }
                    }
                }
            }
        }
        out
    }
}

/// Whether the AVX2+FMA tile kernel can run on this CPU.
pub(super) fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `Σ_t pa[t][ioff+u] * pb[t][v]` over the rows of two panels.
pub(super) fn tile(fma: bool, pa: &[f64], ioff: usize, pb: &[f64]) -> [[f64; TILE_J]; TILE_I] {
    #[cfg(target_arch = "x86_64")]
    {
        if fma {
            // SAFETY: `has_fma` confirmed the CPU features `tile_fma` is compiled for.
            return unsafe { tile_fma(pa, ioff, pb) };
        }
    }
    let _ = fma;
    tile_portable(pa, ioff, pb)
}

macro_rules! tile_body {
    ($pa:expr, $ioff:expr, $pb:expr, $madd:expr) => {{
        let mut acc = [[0.0f64; TILE_J]; TILE_I];
        for (ra, rb) in $pa.chunks_exact(TILE_J).zip($pb.chunks_exact(TILE_J)) {
            let a: [f64; TILE_I] = ra[$ioff..$ioff + TILE_I].try_into().unwrap();
            let b: [f64; TILE_J] = rb.try_into().unwrap();
            for u in 0..TILE_I {
                for v in 0..TILE_J {
                    acc[u][v] = $madd(a[u], b[v], acc[u][v]);
                }
            }
        }
        acc
    }};
}

pub(super) fn tile_portable(pa: &[f64], ioff: usize, pb: &[f64]) -> [[f64; TILE_J]; TILE_I] {
    tile_body!(pa, ioff, pb, |a: f64, b: f64, c: f64| c + a * b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_fma(pa: &[f64], ioff: usize, pb: &[f64]) -> [[f64; TILE_J]; TILE_I] {
    tile_body!(pa, ioff, pb, |a: f64, b: f64, c: f64| a.mul_add(b, c))
}
