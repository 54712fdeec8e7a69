// CUDA built-ins for a host (CPU) build of the very kernels in kernels/cuda/*.cu, so that CI runs them.
//
// Included ahead of a .cu file (`c++ -include cuda_host.h`, see kernels/cuda_host.py); compile with
// -ffp-contract=off -fno-fast-math so that every float operation rounds once, in float32, as
// `nvcc --fmad=false` does. A launch runs each (block, thread) of the grid one after another in an
// order given by the caller, through the JR2NET_HOST_KERNEL trampolines below.
//
// Only what the kernels use is defined. Anything whose meaning needs threads running together on a
// GPU (shared memory, barriers) stops the build with a message instead of running wrongly.

#include <math.h>
#include <string.h>

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#if defined(__FAST_MATH__)
#error "cuda_host.h: build without -ffast-math: the kernels' float operations must round as on the GPU"
#endif
#if !defined(__FLT_EVAL_METHOD__) || __FLT_EVAL_METHOD__ != 0
#error "cuda_host.h: float must be evaluated in float32 (SSE, not x87 excess precision)"
#endif

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static_assert(false, "cuda_host.h: __shared__ memory needs a GPU; the host build runs threads one by one");
#define __syncthreads() static_assert(false, "cuda_host.h: __syncthreads needs a GPU; the host build runs threads one by one")

struct uint3 {
    unsigned int x, y, z;
};

struct dim3 {
    unsigned int x, y, z;
};

// Set by the launcher before each thread runs; thread_local, so a threaded launcher would be right too.
inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;

// Round-to-nearest float32 arithmetic: plain operators under -ffp-contract=off.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }

inline unsigned int __float_as_uint(float value) {
    unsigned int bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

inline int max(int a, int b) { return a > b ? a : b; }

// CUDA's 64-bit atomicMin: stores min(*address, value) atomically and returns the old value.
inline unsigned long long atomicMin(unsigned long long* address, unsigned long long value) {
    unsigned long long old = __atomic_load_n(address, __ATOMIC_RELAXED);
    while (value < old &&
           !__atomic_compare_exchange_n(address, &old, value, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return old;
}

// A kernel parameter's kind for the launcher's argument check: "p" + pointee kind for a pointer,
// "i" (integer) or "f" (float) + size in bytes for a scalar; signedness is not told apart.
template <typename T>
std::string jr2net_host_kind() {
    if constexpr (std::is_pointer_v<T>) {
        return "p" + jr2net_host_kind<std::remove_cv_t<std::remove_pointer_t<T>>>();
    } else {
        return (std::is_floating_point_v<T> ? "f" : "i") + std::to_string(sizeof(T));
    }
}

template <typename... Params>
std::string jr2net_host_signature(void (*)(Params...)) {
    std::string kinds;
    ((kinds += jr2net_host_kind<Params>() + " "), ...);
    return kinds;
}

// One thread's call: args holds a pointer to each argument's value, as cuLaunchKernel takes them.
template <typename... Params, std::size_t... I>
inline void jr2net_host_call(void (*kernel)(Params...), void** args, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_cv_t<Params>*>(args[I])...);
}

// Run flat thread ids order[0..threads) (block * block_dim + thread) of a grid_dim x block_dim grid.
template <typename... Params>
void jr2net_host_launch(void (*kernel)(Params...), const long long* order, long long threads,
                        unsigned int block_dim, unsigned int grid_dim, void** args) {
    blockDim = {block_dim, 1, 1};
    gridDim = {grid_dim, 1, 1};
    for (long long i = 0; i < threads; ++i) {
        blockIdx = {(unsigned int)(order[i] / block_dim), 0, 0};
        threadIdx = {(unsigned int)(order[i] % block_dim), 0, 0};
        jr2net_host_call(kernel, args, std::index_sequence_for<Params...>{});
    }
}

// One kernel's exported entry points: jr2net_host_launch_NAME and jr2net_host_signature_NAME.
#define JR2NET_HOST_KERNEL(name)                                                                       \
    extern "C" void jr2net_host_launch_##name(const long long* order, long long threads,               \
                                              unsigned int block_dim, unsigned int grid_dim,           \
                                              void** args) {                                           \
        jr2net_host_launch(name, order, threads, block_dim, grid_dim, args);                           \
    }                                                                                                  \
    extern "C" const char* jr2net_host_signature_##name() {                                            \
        static const std::string signature = jr2net_host_signature(name);                             \
        return signature.c_str();                                                                      \
    }
