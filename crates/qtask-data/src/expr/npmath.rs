//! numpy's float32 natural logarithm, bit for bit.
//!
//! Qlib applies `np.log` to float32 series; numpy's SIMD kernel is not correctly rounded
//! (it differs from `ln` rounded to f32 in about 1 case in 6), and correlations near zero
//! amplify that last bit past a 1e-4 relative tolerance. This is numpy's kernel
//! (`npyv_log_FLOAT_kernel`): a degree-5 rational approximation on the mantissa, evaluated
//! with fused multiply-adds, checked against numpy 2.4 on 400k values.

// numpy's constants verbatim; like C, Rust rounds them to f32.
#[allow(clippy::excessive_precision)]
const P: [f32; 6] = [
    0.0,
    9.999_999_999_999_998e-1,
    2.112_677_543_073_053,
    1.480_000_633_576_506_5,
    3.808_837_741_388_408e-1,
    2.589_979_117_907_922_7e-2,
];
#[allow(clippy::excessive_precision)]
const Q: [f32; 6] = [
    1.0,
    2.612_677_543_073_109,
    2.453_006_071_784_736_4,
    9.864_942_958_519_419e-1,
    1.546_476_374_983_906_7e-1,
    5.875_095_403_124_574e-3,
];

/// `np.log` on a float32 value.
pub fn log_f32(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x < 0.0 {
        return f32::NAN;
    }
    if x == 0.0 {
        return f32::NEG_INFINITY;
    }
    if x == f32::INFINITY {
        return x;
    }
    let bits = x.to_bits();
    let mut e = ((bits >> 23) as i32 - 126) as f32;
    let mut m = f32::from_bits((bits & 0x007F_FFFF) | 0x3F00_0000);
    if m <= std::f32::consts::FRAC_1_SQRT_2 {
        m += m;
        e -= 1.0;
    }
    let y = m - 1.0;
    let num = P[5]
        .mul_add(y, P[4])
        .mul_add(y, P[3])
        .mul_add(y, P[2])
        .mul_add(y, P[1])
        .mul_add(y, P[0]);
    let den = Q[5]
        .mul_add(y, Q[4])
        .mul_add(y, Q[3])
        .mul_add(y, Q[2])
        .mul_add(y, Q[1])
        .mul_add(y, Q[0]);
    e.mul_add(std::f32::consts::LN_2, num / den)
}

#[cfg(test)]
mod tests {
    use super::log_f32;

    #[test]
    fn matches_numpy_where_rounded_ln_differs() {
        // (input bits, np.log(np.float32(x)) bits) from numpy 2.4; `ln` rounded to f32 gives
        // one ulp less for each of these.
        let cases = [
            (0x480d_f4f3_u32, 0x413e_3122_u32),
            (0x4ad0_cd89, 0x417b_d14d),
            (0x4af6_d6ed, 0x417e_7ec2),
            (0x49ba_9a59, 0x4163_d69e),
        ];
        for (x, want) in cases {
            let x = f32::from_bits(x);
            assert_eq!(log_f32(x).to_bits(), want, "log({x})");
            assert_ne!(((x as f64).ln() as f32).to_bits(), want);
        }
    }

    #[test]
    fn special_values() {
        assert_eq!(log_f32(1.0), 0.0);
        assert_eq!(log_f32(0.0), f32::NEG_INFINITY);
        assert_eq!(log_f32(f32::INFINITY), f32::INFINITY);
        assert!(log_f32(-1.0).is_nan());
        assert!(log_f32(f32::NAN).is_nan());
    }
}
