// Rasterizer: CUDA twin of kernels/rasterize_torch.py.
// Depth test: one 64-bit atomicMin per covered pixel on (float32 depth bits << 32) | triangle id,
// so nearer wins and equal depth goes to the lower id, with no race. Every float operation uses
// round-to-nearest intrinsics in the reference's order (no FMA contraction), so tri_id, bary and
// depth match the torch reference bit for bit.

#define EMPTY_KEY 0x7FFFFFFFFFFFFFFFull

struct Corners {
    float x0, y0, z0, x1, y1, z1, x2, y2, z2;
};

__device__ __forceinline__ Corners load_corners(const float* screen, const long long* triangles, long long b,
                                                long long f, long long vertex_count) {
    const float* base = screen + b * vertex_count * 3;
    const long long* tri = triangles + f * 3;
    Corners c;
    c.x0 = base[tri[0] * 3]; c.y0 = base[tri[0] * 3 + 1]; c.z0 = base[tri[0] * 3 + 2];
    c.x1 = base[tri[1] * 3]; c.y1 = base[tri[1] * 3 + 1]; c.z1 = base[tri[1] * 3 + 2];
    c.x2 = base[tri[2] * 3]; c.y2 = base[tri[2] * 3 + 1]; c.z2 = base[tri[2] * 3 + 2];
    return c;
}

__device__ __forceinline__ float triangle_area(const Corners& c) {
    return __fsub_rn(__fmul_rn(__fsub_rn(c.x1, c.x0), __fsub_rn(c.y2, c.y0)),
                     __fmul_rn(__fsub_rn(c.y1, c.y0), __fsub_rn(c.x2, c.x0)));
}

// Edge functions n0, n1, n2 at (px, py); the pixel is covered when each has the area's sign or is 0.
__device__ __forceinline__ bool edge_values(const Corners& c, float area, float px, float py, float* n) {
    n[0] = __fsub_rn(__fmul_rn(__fsub_rn(c.x2, c.x1), __fsub_rn(py, c.y1)),
                     __fmul_rn(__fsub_rn(c.y2, c.y1), __fsub_rn(px, c.x1)));
    n[1] = __fsub_rn(__fmul_rn(__fsub_rn(c.x0, c.x2), __fsub_rn(py, c.y2)),
                     __fmul_rn(__fsub_rn(c.y0, c.y2), __fsub_rn(px, c.x2)));
    n[2] = __fsub_rn(__fmul_rn(__fsub_rn(c.x1, c.x0), __fsub_rn(py, c.y0)),
                     __fmul_rn(__fsub_rn(c.y1, c.y0), __fsub_rn(px, c.x0)));
    float sign = area > 0.0f ? 1.0f : -1.0f;
    return area != 0.0f && __fmul_rn(n[0], sign) >= 0.0f && __fmul_rn(n[1], sign) >= 0.0f &&
           __fmul_rn(n[2], sign) >= 0.0f;
}

// Perspective-correct barycentrics and depth from the edge functions.
__device__ __forceinline__ void perspective(const Corners& c, float area, const float* n, float* bary, float* depth) {
    float q0 = __fdiv_rn(__fdiv_rn(n[0], area), c.z0);
    float q1 = __fdiv_rn(__fdiv_rn(n[1], area), c.z1);
    float q2 = __fdiv_rn(__fdiv_rn(n[2], area), c.z2);
    float inverse_depth = __fadd_rn(__fadd_rn(q0, q1), q2);
    bary[0] = __fdiv_rn(q0, inverse_depth);
    bary[1] = __fdiv_rn(q1, inverse_depth);
    bary[2] = __fdiv_rn(q2, inverse_depth);
    *depth = __fdiv_rn(1.0f, inverse_depth);
}

// One thread per (batch, triangle): test every pixel of the clipped bounding box.
extern "C" __global__ void rasterize_triangles(const float* screen, const long long* triangles,
                                               long long batch, long long vertex_count, long long face_count,
                                               int height, int width, float near,
                                               unsigned long long* keys) {
    long long job = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (job >= batch * face_count) return;
    long long b = job / face_count, f = job % face_count;
    Corners c = load_corners(screen, triangles, b, f, vertex_count);
    float zs[3] = {c.z0, c.z1, c.z2};
    float xs[3] = {c.x0, c.x1, c.x2};
    float ys[3] = {c.y0, c.y1, c.y2};
    for (int k = 0; k < 3; ++k) {
        if (!(zs[k] > near) || !isfinite(xs[k]) || !isfinite(ys[k]) || !isfinite(zs[k])) return;
    }
    float lo_x = fminf(fminf(c.x0, c.x1), c.x2), hi_x = fmaxf(fmaxf(c.x0, c.x1), c.x2);
    float lo_y = fminf(fminf(c.y0, c.y1), c.y2), hi_y = fmaxf(fmaxf(c.y0, c.y1), c.y2);
    int col_lo = max((int)ceilf(__fsub_rn(lo_x, 0.5f)), 0);
    int row_lo = max((int)ceilf(__fsub_rn(lo_y, 0.5f)), 0);
    int col_hi = (int)fminf(floorf(__fsub_rn(hi_x, 0.5f)), (float)(width - 1));
    int row_hi = (int)fminf(floorf(__fsub_rn(hi_y, 0.5f)), (float)(height - 1));
    float area = triangle_area(c);
    if (area == 0.0f) return;
    unsigned long long* image = keys + b * (long long)height * width;
    for (int row = row_lo; row <= row_hi; ++row) {
        float py = __fadd_rn((float)row, 0.5f);
        for (int col = col_lo; col <= col_hi; ++col) {
            float px = __fadd_rn((float)col, 0.5f);
            float n[3], bary[3], depth;
            if (!edge_values(c, area, px, py, n)) continue;
            perspective(c, area, n, bary, &depth);
            if (!(depth > 0.0f) || !isfinite(depth)) continue;
            unsigned long long key = ((unsigned long long)__float_as_uint(depth) << 32) | (unsigned long long)f;
            atomicMin(image + (long long)row * width + col, key);
        }
    }
}

// One thread per pixel: decode the winning key and recompute its barycentrics and depth.
extern "C" __global__ void resolve_fragments(const float* screen, const long long* triangles,
                                             const unsigned long long* keys, long long batch,
                                             long long vertex_count, int height, int width,
                                             long long* tri_id, float* bary, float* depth) {
    long long pixel = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long per_image = (long long)height * width;
    if (pixel >= batch * per_image) return;
    unsigned long long key = keys[pixel];
    if (key == EMPTY_KEY) {
        tri_id[pixel] = -1;
        bary[pixel * 3] = 0.0f; bary[pixel * 3 + 1] = 0.0f; bary[pixel * 3 + 2] = 0.0f;
        depth[pixel] = 0.0f;
        return;
    }
    long long b = pixel / per_image, rest = pixel % per_image;
    long long f = (long long)(key & 0xFFFFFFFFull);
    Corners c = load_corners(screen, triangles, b, f, vertex_count);
    float px = __fadd_rn((float)(rest % width), 0.5f), py = __fadd_rn((float)(rest / width), 0.5f);
    float n[3];
    float area = triangle_area(c);
    edge_values(c, area, px, py, n);
    tri_id[pixel] = f;
    perspective(c, area, n, bary + pixel * 3, depth + pixel);
}
