//! Runtime CPU dispatch: which SIMD level the fast kernels use.
//!
//! The level is detected once (cached) so that one portable release binary runs at full speed
//! on any x86-64: AVX-512F where present, AVX2+FMA otherwise, and a portable path (the `wide`
//! crate's fixed-width vectors: SSE2 on x86-64, NEON on aarch64) everywhere else. Above
//! AVX-512F, `Avx512Bf16` (AVX512-BF16 too, e.g. Zen 4) adds the bf16 dot-product GEMM kernels;
//! every `f32` kernel runs there exactly as at `Avx512` ([`CpuLevel::f32_level`]). Setting
//! `CHARRNN_CPU_LEVEL=portable|avx2|avx512|avx512bf16` caps the level (never above what the CPU
//! has), so tests and benches can exercise every path on one machine.

use std::sync::OnceLock;

/// A SIMD level, ordered from least to most capable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CpuLevel {
    /// Portable vectors (`wide`), no runtime features needed.
    Portable,
    /// x86-64 AVX2 with FMA (256-bit).
    Avx2,
    /// x86-64 AVX-512F (512-bit).
    Avx512,
    /// x86-64 AVX-512F with AVX512-BF16 (`vdpbf16ps`): the native bf16 GEMM kernels; every
    /// `f32` kernel is the `Avx512` one.
    Avx512Bf16,
}

impl CpuLevel {
    /// Lowercase name, as `CHARRNN_CPU_LEVEL` takes it.
    pub fn name(self) -> &'static str {
        match self {
            CpuLevel::Portable => "portable",
            CpuLevel::Avx2 => "avx2",
            CpuLevel::Avx512 => "avx512",
            CpuLevel::Avx512Bf16 => "avx512bf16",
        }
    }

    /// The level whose code the `f32` kernels run at this level: the same, but `Avx512` for
    /// `Avx512Bf16` (which adds only bf16 instructions).
    pub fn f32_level(self) -> CpuLevel {
        match self {
            CpuLevel::Avx512Bf16 => CpuLevel::Avx512,
            level => level,
        }
    }

    /// Every level, least capable first.
    pub const ALL: [CpuLevel; 4] = [CpuLevel::Portable, CpuLevel::Avx2, CpuLevel::Avx512, CpuLevel::Avx512Bf16];

    fn parse(s: &str) -> Option<CpuLevel> {
        match s.trim().to_ascii_lowercase().as_str() {
            "portable" | "scalar" | "generic" => Some(CpuLevel::Portable),
            "avx2" => Some(CpuLevel::Avx2),
            "avx512" | "avx512f" => Some(CpuLevel::Avx512),
            "avx512bf16" => Some(CpuLevel::Avx512Bf16),
            _ => None,
        }
    }
}

/// The most capable level this CPU supports.
pub fn detected_level() -> CpuLevel {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            if std::arch::is_x86_feature_detected!("avx512bf16") {
                return CpuLevel::Avx512Bf16;
            }
            return CpuLevel::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return CpuLevel::Avx2;
        }
    }
    CpuLevel::Portable
}

/// Every level this CPU can run, least capable first (what tests iterate over).
pub fn available_levels() -> Vec<CpuLevel> {
    let top = detected_level();
    CpuLevel::ALL.into_iter().filter(|&l| l <= top).collect()
}

/// The levels whose `f32` code differs, that this CPU can run (`Avx512Bf16` runs the `Avx512`
/// code): what tests of the `f32`-only kernels iterate over.
pub fn available_f32_levels() -> Vec<CpuLevel> {
    available_levels().into_iter().filter(|&l| l.f32_level() == l).collect()
}

/// The level the kernels use: the detected one, capped by `CHARRNN_CPU_LEVEL` when set.
/// Decided once per process.
pub fn cpu_level() -> CpuLevel {
    static LEVEL: OnceLock<CpuLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let detected = detected_level();
        match std::env::var("CHARRNN_CPU_LEVEL") {
            Ok(value) => match CpuLevel::parse(&value) {
                Some(requested) => requested.min(detected),
                None => {
                    eprintln!("warning: ignoring CHARRNN_CPU_LEVEL={value:?} (expected portable, avx2, avx512 or avx512bf16)");
                    detected
                }
            },
            Err(_) => detected,
        }
    })
}

/// The CPU as the OS reports it (`model name`, `cpu family` and `model` in `/proc/cpuinfo`), for
/// reports: every figure quoted names the CPU it was measured on, and a virtual machine's model
/// name can be as vague as "AMD EPYC". `None` where the OS does not say.
pub fn cpu_model_name() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let field = |key: &str| {
        let line = info.lines().find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))?;
        let value = line.split_once(':')?.1.trim();
        (!value.is_empty()).then_some(value)
    };
    let name = field("model name")?;
    Some(match (field("cpu family"), field("model")) {
        (Some(family), Some(model)) => format!("{name} (family {family}, model {model})"),
        _ => name.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_parse() {
        assert!(CpuLevel::Portable < CpuLevel::Avx2 && CpuLevel::Avx2 < CpuLevel::Avx512);
        assert!(CpuLevel::Avx512 < CpuLevel::Avx512Bf16);
        assert_eq!(CpuLevel::Avx512Bf16.f32_level(), CpuLevel::Avx512);
        for level in CpuLevel::ALL {
            assert_eq!(CpuLevel::parse(level.name()), Some(level));
        }
        assert_eq!(CpuLevel::parse("sse9"), None);
        let levels = available_levels();
        assert_eq!(levels[0], CpuLevel::Portable);
        assert!(levels.contains(&cpu_level()));
    }

    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[test]
    fn an_x86_linux_cpu_has_a_name() {
        let name = cpu_model_name().expect("/proc/cpuinfo names x86 CPUs");
        assert!(!name.is_empty() && !name.contains('\n'), "{name:?}");
    }
}
