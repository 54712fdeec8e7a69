// Shading maps: CUDA twin of kernels/maps_torch.py (normal, SH light, albedo, image per pixel).

extern "C" __global__ void shade_maps(const long long* tri_id, const float* bary, const long long* triangles,
                                      const float* normals, const float* albedo, const float* coefficients,
                                      long long batch, long long vertex_count, int height, int width,
                                      float* out_normal, float* out_light, float* out_albedo, float* out_image) {
    long long pixel = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long per_image = (long long)height * width;
    if (pixel >= batch * per_image) return;
    long long face = tri_id[pixel];
    if (face < 0) return;
    long long b = pixel / per_image;
    const long long* tri = triangles + face * 3;
    const float* w = bary + pixel * 3;
    const float* nb = normals + b * vertex_count * 3;
    const float* ab = albedo + b * vertex_count * 3;
    float n[3], a[3];
    for (int c = 0; c < 3; ++c) {
        n[c] = nb[tri[0] * 3 + c] * w[0] + nb[tri[1] * 3 + c] * w[1] + nb[tri[2] * 3 + c] * w[2];
        a[c] = ab[tri[0] * 3 + c] * w[0] + ab[tri[1] * 3 + c] * w[1] + ab[tri[2] * 3 + c] * w[2];
    }
    float length = fmaxf(sqrtf(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]), 1e-12f);
    float x = n[0] / length, y = n[1] / length, z = n[2] / length;
    float terms[9] = {1.0f, y, z, x, x * y, y * z, 3.0f * z * z - 1.0f, x * z, x * x - y * y};
    const float* coeff = coefficients + b * 27;
    float normal[3] = {x, y, z};
    for (int c = 0; c < 3; ++c) {
        float value = 0.0f;
        for (int t = 0; t < 9; ++t) value += terms[t] * coeff[t * 3 + c];
        out_normal[pixel * 3 + c] = normal[c];
        out_albedo[pixel * 3 + c] = a[c];
        out_light[pixel * 3 + c] = value;
        out_image[pixel * 3 + c] = a[c] * value;
    }
}
