// Dense correspondence of the reenactor: each target pixel's surface point on the source (barycentric
// point of the source's camera-frame vertices, projected with the source intrinsics) and its
// co-visibility in the source depth, one thread per target pixel. CUDA twin of
// kernels/correspond_torch.py; float operations follow the reference's order with round-to-nearest
// intrinsics (no FMA contraction), so the outputs match it exactly.

__device__ __forceinline__ float weighted(const float* points, long long i, long long j, long long k, int axis,
                                          float b0, float b1, float b2) {
    return __fadd_rn(__fadd_rn(__fmul_rn(points[i * 3 + axis], b0), __fmul_rn(points[j * 3 + axis], b1)),
                     __fmul_rn(points[k * 3 + axis], b2));
}

__device__ __forceinline__ float projected(const float* row, float x, float y, float z) {
    return __fdiv_rn(__fadd_rn(__fadd_rn(__fmul_rn(x, row[0]), __fmul_rn(y, row[1])), __fmul_rn(z, row[2])), z);
}

extern "C" __global__ void correspond(const long long* tri_id, const float* bary, const long long* triangles,
                                      const float* source_points, const float* camera, const float* source_depth,
                                      long long batch, long long vertex_count, int height, int width,
                                      int source_height, int source_width, float limit,
                                      float* points, float* covisible) {
    long long pixel = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long per_image = (long long)height * width;
    if (pixel >= batch * per_image) return;
    long long face = tri_id[pixel];
    if (face < 0) return;
    long long b = pixel / per_image;
    const float* vertices = source_points + b * vertex_count * 3;
    const float* k = camera + b * 9;
    long long i = triangles[face * 3], j = triangles[face * 3 + 1], l = triangles[face * 3 + 2];
    float b0 = bary[pixel * 3], b1 = bary[pixel * 3 + 1], b2 = bary[pixel * 3 + 2];
    float px = weighted(vertices, i, j, l, 0, b0, b1, b2);
    float py = weighted(vertices, i, j, l, 1, b0, b1, b2);
    float pz = weighted(vertices, i, j, l, 2, b0, b1, b2);
    float sx = projected(k, px, py, pz), sy = projected(k + 3, px, py, pz);
    points[pixel * 3] = sx;
    points[pixel * 3 + 1] = sy;
    points[pixel * 3 + 2] = pz;
    if (sx >= 0.0f && sx < (float)source_width && sy >= 0.0f && sy < (float)source_height) {
        long long source_plane = (long long)source_height * source_width;
        float seen = source_depth[b * source_plane + (long long)floorf(sy) * source_width + (long long)floorf(sx)];
        if (seen > 0.0f && pz <= __fmul_rn(seen, limit)) covisible[pixel] = 1.0f;
    }
}
