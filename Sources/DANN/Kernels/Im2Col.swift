/// Geometry of a k×k convolution or pooling window over a batch of planes.
public struct ConvGeometry: Equatable, Sendable {
    public var channels: Int
    public var height: Int
    public var width: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int

    public init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int = 1, padding: Int = 0) {
        self.channels = channels
        self.height = height
        self.width = width
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
    }

    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    public var planeSize: Int { height * width }
    public var outPlaneSize: Int { outHeight * outWidth }
    /// Rows of the column matrix: one per (channel, ky, kx), in PyTorch's weight order.
    public var patchSize: Int { channels * kernel * kernel }
}

/// Where image n, channel c of a batch starts: activations inside the network are channel-major
/// ([C][N][H][W], so one GEMM covers the batch and writes its output in place), while images
/// arriving from the data layer are [N][C][H][W]. Both are a pair of strides.
public struct PlaneStrides: Equatable, Sendable {
    public var channel: Int
    public var image: Int

    /// [N][C][H][W]
    public static func imageMajor(_ g: ConvGeometry) -> PlaneStrides {
        PlaneStrides(channel: g.planeSize, image: g.channels * g.planeSize)
    }

    /// [C][N][H][W]
    public static func channelMajor(_ g: ConvGeometry, batch: Int) -> PlaneStrides {
        PlaneStrides(channel: batch * g.planeSize, image: g.planeSize)
    }
}

/// im2col/col2im for the stride-1 convolutions of the networks: the batch is copied once into a zero-bordered
/// buffer (`pad`), so unfolding is contiguous row copies with no bounds checks. (The tests hold a bounds-checked
/// version for any stride and padding, `Im2Col.forward`/`backward`, as the reference these are checked against.)
public enum Im2Col {
    /// Floats of the zero-bordered copy that `forwardPadded`/`backwardPadded` work on: [C][batch][H+2p][W+2p].
    public static func paddedCount(geometry g: ConvGeometry, batch: Int) -> Int {
        g.channels * batch * (g.height + 2 * g.padding) * (g.width + 2 * g.padding)
    }

    /// Copies the batch into `padded` ([C][batch][H+2p][W+2p], zero border) so that stride-1 unfolding
    /// needs no bounds checks.
    public static func pad(
        _ input: UnsafePointer<Float>, strides s: PlaneStrides, geometry g: ConvGeometry, batch: Int,
        into padded: UnsafeMutablePointer<Float>
    ) {
        let p = g.padding, hp = g.height + 2 * p, wp = g.width + 2 * p
        if p > 0 { padded.update(repeating: 0, count: paddedCount(geometry: g, batch: batch)) }
        for c in 0..<g.channels {
            for n in 0..<batch {
                let src = input + n * s.image + c * s.channel
                let dst = padded + (c * batch + n) * hp * wp + p * wp + p
                for y in 0..<g.height { copyRow(src + y * g.width, dst + y * wp, g.width) }
            }
        }
    }

    /// The inverse of `pad` on the interior: writes the batch's planes from a padded [C][batch][H+2p][W+2p].
    public static func unpad(
        _ padded: UnsafePointer<Float>, strides s: PlaneStrides, geometry g: ConvGeometry, batch: Int,
        into input: UnsafeMutablePointer<Float>
    ) {
        let p = g.padding, hp = g.height + 2 * p, wp = g.width + 2 * p
        for c in 0..<g.channels {
            for n in 0..<batch {
                let dst = input + n * s.image + c * s.channel
                let src = padded + (c * batch + n) * hp * wp + p * wp + p
                for y in 0..<g.height { copyRow(src + y * wp, dst + y * g.width, g.width) }
            }
        }
    }

    /// `forward` for stride 1 from a padded copy (see `pad`): every column row is oh contiguous copies.
    public static func forwardPadded(
        _ padded: UnsafePointer<Float>, geometry g: ConvGeometry, batch: Int, into col: UnsafeMutablePointer<Float>
    ) {
        precondition(g.stride == 1, "forwardPadded needs stride 1")
        let oh = g.outHeight, ow = g.outWidth, k = g.kernel
        let hp = g.height + 2 * g.padding, wp = g.width + 2 * g.padding
        var dst = col
        for c in 0..<g.channels {
            for ky in 0..<k {
                for kx in 0..<k {
                    for n in 0..<batch {
                        var src = padded + (c * batch + n) * hp * wp + ky * wp + kx
                        for _ in 0..<oh {
                            copyRow(src, dst, ow)
                            src += wp
                            dst += ow
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `forwardPadded`: sums the columns into `padded`, which it zeroes first; `unpad`
    /// then gives the input gradient.
    public static func backwardPadded(
        _ col: UnsafePointer<Float>, geometry g: ConvGeometry, batch: Int, into padded: UnsafeMutablePointer<Float>
    ) {
        precondition(g.stride == 1, "backwardPadded needs stride 1")
        let oh = g.outHeight, ow = g.outWidth, k = g.kernel
        let hp = g.height + 2 * g.padding, wp = g.width + 2 * g.padding
        padded.update(repeating: 0, count: paddedCount(geometry: g, batch: batch))
        var src = col
        for c in 0..<g.channels {
            for ky in 0..<k {
                for kx in 0..<k {
                    for n in 0..<batch {
                        var dst = padded + (c * batch + n) * hp * wp + ky * wp + kx
                        for _ in 0..<oh {
                            Elementwise.add(src, into: dst, count: ow)
                            src += ow
                            dst += wp
                        }
                    }
                }
            }
        }
    }

    /// Copies a short row with vector moves; the last move may overlap the previous one, which is
    /// harmless for a copy and saves a scalar tail.
    @inline(__always)
    static func copyRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        if n >= 8 {
            var i = 0
            while i + 8 <= n {
                UnsafeMutableRawPointer(dst + i).storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
                i += 8
            }
            if i < n {
                let j = n - 8
                UnsafeMutableRawPointer(dst + j).storeBytes(of: UnsafeRawPointer(src + j).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
            }
        } else if n >= 4 {
            UnsafeMutableRawPointer(dst).storeBytes(of: UnsafeRawPointer(src).loadUnaligned(as: SIMD4<Float>.self), as: SIMD4<Float>.self)
            let j = n - 4
            UnsafeMutableRawPointer(dst + j).storeBytes(of: UnsafeRawPointer(src + j).loadUnaligned(as: SIMD4<Float>.self), as: SIMD4<Float>.self)
        } else {
            for i in 0..<n { dst[i] = src[i] }
        }
    }

    /// The output columns ox in [lo, hi) for which ox·stride + offset lies in [0, limit).
    @inline(__always)
    static func validRange(offset: Int, stride: Int, count: Int, limit: Int) -> (Int, Int) {
        var lo = 0
        while lo < count && lo * stride + offset < 0 { lo += 1 }
        var hi = count
        while hi > lo && (hi - 1) * stride + offset >= limit { hi -= 1 }
        return (lo, hi)
    }
}
