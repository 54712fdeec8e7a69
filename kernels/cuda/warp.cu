// Eq. 2 warp, fused: sampling grid + zero-padded bilinear sample + co-visibility, one thread per
// target pixel. CUDA twin of kernels/warp_torch.py; float operations follow the reference's order
// with round-to-nearest intrinsics (no FMA contraction), so grid and masks match it exactly.

__device__ __forceinline__ float row_value(const float* m, float px, float py, float depth, float offset) {
    return __fadd_rn(__fmul_rn(__fadd_rn(__fadd_rn(__fmul_rn(m[0], px), __fmul_rn(m[1], py)), m[2]), depth), offset);
}

extern "C" __global__ void warp_fused(const float* source, const float* source_depth, const float* target_depth,
                                      const float* matrix, const float* offset, long long batch, int channels,
                                      int source_height, int source_width, int height, int width,
                                      float limit_factor, float near, float invalid,
                                      float* grid, float* image, float* valid, float* covisible) {
    long long pixel = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long per_image = (long long)height * width;
    if (pixel >= batch * per_image) return;
    long long b = pixel / per_image, rest = pixel % per_image;
    int x = (int)(rest % width), y = (int)(rest / width);
    grid[pixel * 2] = invalid;
    grid[pixel * 2 + 1] = invalid;
    float d = target_depth[pixel];
    if (!(d > 0.0f)) return;
    const float* m = matrix + b * 9;
    const float* o = offset + b * 3;
    float px = __fadd_rn((float)x, 0.5f), py = __fadd_rn((float)y, 0.5f);
    float hx = row_value(m, px, py, d, o[0]);
    float hy = row_value(m + 3, px, py, d, o[1]);
    float hz = row_value(m + 6, px, py, d, o[2]);
    if (!(hz > near)) return;
    float sx = __fdiv_rn(hx, hz), sy = __fdiv_rn(hy, hz);
    grid[pixel * 2] = sx;
    grid[pixel * 2 + 1] = sy;
    valid[pixel] = 1.0f;
    long long source_plane = (long long)source_height * source_width;
    float ux = __fsub_rn(sx, 0.5f), uy = __fsub_rn(sy, 0.5f);
    if (ux > -2.0f && ux < source_width + 1.0f && uy > -2.0f && uy < source_height + 1.0f) {
        float fx = floorf(ux), fy = floorf(uy);
        float ax = __fsub_rn(ux, fx), ay = __fsub_rn(uy, fy);
        int x0 = (int)fx, y0 = (int)fy;
        float weights[4] = {__fmul_rn(__fsub_rn(1.0f, ax), __fsub_rn(1.0f, ay)), __fmul_rn(ax, __fsub_rn(1.0f, ay)),
                            __fmul_rn(__fsub_rn(1.0f, ax), ay), __fmul_rn(ax, ay)};
        for (int c = 0; c < channels; ++c) {
            const float* plane = source + (b * channels + c) * source_plane;
            float total = 0.0f;
            for (int tap = 0; tap < 4; ++tap) {
                int col = x0 + tap % 2, row = y0 + tap / 2;
                bool inside = col >= 0 && col < source_width && row >= 0 && row < source_height;
                float value = inside ? plane[(long long)row * source_width + col] : 0.0f;
                total = __fadd_rn(total, __fmul_rn(value, weights[tap]));
            }
            image[(b * channels + c) * per_image + rest] = total;
        }
    }
    if (sx >= 0.0f && sx < (float)source_width && sy >= 0.0f && sy < (float)source_height) {
        float seen = source_depth[b * source_plane + (long long)floorf(sy) * source_width + (long long)floorf(sx)];
        if (seen > 0.0f && hz <= __fmul_rn(seen, limit_factor)) covisible[pixel] = 1.0f;
    }
}
