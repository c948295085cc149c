//! The one API of every kernel.
//!
//! A kernel call is a struct that holds all of its arguments — shapes, slices, scalars — by
//! name, generic over the element type ([`kernel_args!`] declares it, with its [`KernelArgs`]
//! conversion to the same call over `f32`). [`Kernel`] gives it a shape check, run once per
//! call, and the plain scalar body: the whole kernel for `f64` and the reference twin of the
//! fast path. [`FastKernel`] is the fast path of the same struct over `f32`, at an explicit SIMD
//! level. [`Kernel::run`] checks, then takes the fast path at this CPU's level when the element
//! type is `f32`, and the plain body otherwise.
//!
//! Adding a kernel touches its own file: the struct (`kernel_args!`), `check`, `plain`, and for
//! `f32` `fast`. Adding a precision touches [`crate::float`] and [`is_f32`]'s siblings here.

use std::any::TypeId;

use crate::dispatch::{cpu_level, CpuLevel};
use crate::Float;

/// A kernel's argument struct and its conversion to the same call over `f32` data, the type
/// the fast path runs on. [`kernel_args!`] implements it for every struct it declares.
pub trait KernelArgs: Sized {
    /// The same call over `f32` data.
    type F32;

    /// This call as an `f32` call, when its element type is `f32` (`Err(self)` otherwise).
    fn into_f32(self) -> Result<Self::F32, Self>;
}

/// A kernel call over element type `F`: see the module documentation.
pub trait Kernel: KernelArgs {
    /// What the call returns.
    type Output;

    /// Checks every slice against the shapes; panics with the kernel's name and the sizes. The
    /// shapes come from the program, never from user input, so a failure is a programming
    /// error.
    fn check(&self);

    /// The plain scalar body, on checked arguments. Only [`Kernel::run`] and
    /// [`Kernel::run_plain`] call it, right after [`Kernel::check`].
    ///
    /// # Safety
    /// The arguments must satisfy [`Kernel::check`] (every slice as long as the shapes say):
    /// bodies index through raw pointers sized from the shapes alone.
    unsafe fn plain(self) -> Self::Output;

    /// Checks, then runs the fast path at this CPU's level for `f32`, the plain body otherwise.
    // The bound sits here rather than on the trait: a supertrait bound naming `Self::Output`
    // would be a cycle.
    fn run(self) -> Self::Output
    where
        Self::F32: FastKernel<Output = Self::Output>,
    {
        self.check();
        match self.into_f32() {
            // SAFETY: `check` passed on these arguments, and the conversion to `f32` keeps
            // every slice and shape.
            Ok(fast) => unsafe { fast.fast(cpu_level()) },
            // SAFETY: `check` passed on these arguments.
            Err(plain) => unsafe { plain.plain() },
        }
    }

    /// Checks, then runs the plain body (for any element type: the twin the tests compare with).
    fn run_plain(self) -> Self::Output {
        self.check();
        // SAFETY: `check` passed on these arguments.
        unsafe { self.plain() }
    }
}

/// The fast path of a kernel call over `f32`.
pub trait FastKernel: Kernel {
    /// The fast body at SIMD level `level`, on checked arguments. Only [`Kernel::run`] and
    /// [`FastKernel::run_at`] call it, right after [`Kernel::check`].
    ///
    /// # Safety
    /// The arguments must satisfy [`Kernel::check`]: the SIMD bodies load and store through
    /// pointers sized from the shapes alone.
    ///
    /// # Panics
    /// If `level` is above what this CPU supports.
    unsafe fn fast(self, level: CpuLevel) -> Self::Output;

    /// Checks, then runs the fast path at `level` (tests and benches compare every level).
    fn run_at(self, level: CpuLevel) -> Self::Output {
        self.check();
        // SAFETY: `check` passed on these arguments.
        unsafe { self.fast(level) }
    }
}

/// How a test runs a kernel call over `f32`: at one level's fast path, the plain twin, or the
/// public entry point [`Kernel::run`].
#[cfg(test)]
#[derive(Clone, Copy, Debug)]
pub(crate) enum RunPath {
    /// [`FastKernel::run_at`] this level.
    Fast(CpuLevel),
    /// [`Kernel::run_plain`].
    Plain,
    /// [`Kernel::run`].
    Public,
}

#[cfg(test)]
impl RunPath {
    /// Runs `kernel` this way.
    pub(crate) fn run<K: FastKernel + KernelArgs<F32 = K>>(self, kernel: K) -> K::Output {
        match self {
            RunPath::Fast(level) => kernel.run_at(level),
            RunPath::Plain => kernel.run_plain(),
            RunPath::Public => kernel.run(),
        }
    }
}

/// Whether `F` is `f32`.
#[inline(always)]
pub fn is_f32<F: Float>() -> bool {
    TypeId::of::<F>() == TypeId::of::<f32>()
}

/// `x` as `f32`s.
///
/// # Panics
/// If `F` is not `f32` (callers check [`is_f32`] first).
#[inline(always)]
pub fn as_f32<F: Float>(x: &[F]) -> &[f32] {
    assert!(is_f32::<F>(), "as_f32 on a slice of another type");
    // SAFETY: `F` is `f32` (asserted above), so the pointer, length and lifetime describe the
    // same `f32` slice.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast::<f32>(), x.len()) }
}

/// `x` as mutable `f32`s.
///
/// # Panics
/// If `F` is not `f32`.
#[inline(always)]
pub fn as_f32_mut<F: Float>(x: &mut [F]) -> &mut [f32] {
    assert!(is_f32::<F>(), "as_f32_mut on a slice of another type");
    // SAFETY: `F` is `f32` (asserted above); the exclusive borrow moves into the result.
    unsafe { std::slice::from_raw_parts_mut(x.as_mut_ptr().cast::<f32>(), x.len()) }
}

/// A borrowed argument of another kind than a slice that has an `f32` counterpart (a packed
/// GEMM operand, say): what `kernel_args!`'s `cast<T>` fields convert through.
pub trait CastF32 {
    /// The same argument over `f32`.
    type F32;
    /// The argument as its `f32` counterpart.
    ///
    /// # Panics
    /// If the element type is not `f32` (callers check [`is_f32`] first).
    fn cast_f32(self) -> Self::F32;
}

/// Declares a kernel's argument struct, generic over the element type `F`, and implements
/// [`KernelArgs`] for it: its conversion to the same call over `f32`. Each field is one of:
/// `slice` (`&'a [F]`), `slice_mut` (`&'a mut [F]`), `value` (`F`), `cast<T>` (a `T`
/// implementing [`CastF32`]), `plain<T>` (any `T` that does not involve `F`).
#[macro_export]
macro_rules! kernel_args {
    (
        $(#[$meta:meta])*
        pub struct $name:ident<'a, F> {
            $( $(#[$fmeta:meta])* pub $field:ident : $kind:ident $(<$ty:ty>)? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name<'a, F> {
            $( $(#[$fmeta])* pub $field: $crate::kernel_args!(@type $kind $(<$ty>)?), )*
        }

        impl<'a, F: $crate::Float> $crate::kernel::KernelArgs for $name<'a, F> {
            type F32 = $name<'a, f32>;

            #[inline(always)]
            fn into_f32(self) -> Result<$name<'a, f32>, Self> {
                if !$crate::kernel::is_f32::<F>() {
                    return Err(self);
                }
                Ok($name { $( $field: $crate::kernel_args!(@cast $kind self.$field), )* })
            }
        }
    };
    (@type slice) => { &'a [F] };
    (@type slice_mut) => { &'a mut [F] };
    (@type value) => { F };
    (@type cast<$ty:ty>) => { $ty };
    (@type plain<$ty:ty>) => { $ty };
    (@cast slice $e:expr) => { $crate::kernel::as_f32($e) };
    (@cast slice_mut $e:expr) => { $crate::kernel::as_f32_mut($e) };
    (@cast value $e:expr) => { $crate::Float::to_f64($e) as f32 };
    (@cast cast $e:expr) => { $crate::kernel::CastF32::cast_f32($e) };
    (@cast plain $e:expr) => { $e };
}

/// Implements [`FastKernel`] for the `f32` call `$name` whose fast body is its
/// `crate::simd::SimdKernel` impl, run at the requested level; with `unless_zero`, a call with
/// any of those sizes zero does nothing (the fused loops cut rows of those sizes).
macro_rules! simd_fast_path {
    ($name:ident $(, unless_zero: $($size:ident),+)?) => {
        impl $crate::kernel::FastKernel for $name<'_, f32> {
            unsafe fn fast(self, level: $crate::dispatch::CpuLevel) {
                $( if $(self.$size == 0)||+ { return; } )?
                $crate::simd::run(level, self)
            }
        }
    };
}

pub(crate) use simd_fast_path;
