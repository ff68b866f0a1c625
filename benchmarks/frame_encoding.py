"""Which frame encoding should a shard sample use? Bytes per clip-hour vs decode speed.

Decodes a few 16 s clips of ../shared/corpus/smb at 160x90 @ 10 FPS, encodes them each
way, and prints storage per clip-hour, decode clips/s on one core (CPU time, ffmpeg
children included) and PSNR of the round trip. The shard spec (schemas/shard.py) uses the
PNG strip without row filters; rerun this when revisiting that choice.

    .venv/bin/python benchmarks/frame_encoding.py
"""

import pathlib
import resource
import subprocess

import cv2
import numpy as np

SMB = pathlib.Path(__file__).resolve().parents[2] / "shared" / "corpus" / "smb"
H, W, T = 90, 160, 160


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def read_clip(path: pathlib.Path) -> np.ndarray:
    args = ["ffmpeg", "-v", "error", "-i", str(path), "-vf", "fps=10,scale=160:90", "-frames:v", str(T),
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    return np.frombuffer(subprocess.run(args, capture_output=True, check=True).stdout, np.uint8).reshape(-1, H, W, 3)


def jpeg(quality):
    encode = lambda c: [cv2.imencode(".jpg", f[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes() for f in c]
    decode = lambda blobs: np.stack([cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)[..., ::-1] for b in blobs])
    return encode, decode


def png_strip(flags=()):
    params = [cv2.IMWRITE_PNG_COMPRESSION, 3, *flags]
    encode = lambda c: [cv2.imencode(".png", c.reshape(-1, W, 3)[..., ::-1], params)[1].tobytes()]
    decode = lambda blobs: cv2.imdecode(np.frombuffer(blobs[0], np.uint8), cv2.IMREAD_COLOR)[..., ::-1].reshape(-1, H, W, 3)
    return encode, decode


def png_frames():
    encode = lambda c: [cv2.imencode(".png", f[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 3])[1].tobytes() for f in c]
    decode = lambda blobs: np.stack([cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)[..., ::-1] for b in blobs])
    return encode, decode


def raw():
    return (lambda c: [c.tobytes()]), (lambda blobs: np.frombuffer(blobs[0], np.uint8).reshape(-1, H, W, 3))


def h264(crf):
    def encode(clip):
        args = ["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}", "-r", "10", "-i", "-",
                "-c:v", "libx264", "-crf", str(crf), "-pix_fmt", "yuv444p", "-f", "mp4",
                "-movflags", "frag_keyframe+empty_moov", "-"]
        return [subprocess.run(args, input=clip.tobytes(), capture_output=True, check=True).stdout]

    def decode(blobs):
        args = ["ffmpeg", "-v", "error", "-threads", "1", "-f", "mp4", "-i", "-", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        out = subprocess.run(args, input=blobs[0], capture_output=True, check=True).stdout
        return np.frombuffer(out, np.uint8).reshape(-1, H, W, 3)
    return encode, decode


def main() -> None:
    cv2.setNumThreads(1)
    clips = [read_clip(path) for path in sorted(SMB.glob("*.mp4"))[:6]]
    seconds = sum(len(c) for c in clips) / 10
    print(f"{len(clips)} clips, {seconds:.0f} s of 160x90 @ 10 FPS from {SMB}")
    print(f"{'encoding':<22}{'GB/clip-hour':>14}{'clips/s/core':>14}{'PSNR dB':>10}")
    for name, (encode, decode) in {
        "raw uint8": raw(), "JPEG q90 frames": jpeg(90), "JPEG q95 frames": jpeg(95),
        "PNG frames": png_frames(), "PNG strip": png_strip(),
        "PNG strip, no filter": png_strip((cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE)),
        "H.264 crf18 444": h264(18),
    }.items():
        blobs = [encode(c) for c in clips]
        size = sum(len(b) for blob in blobs for b in blob)
        start, repeats = cpu_seconds(), 3
        for _ in range(repeats):
            decoded = [decode(b) for b in blobs]
        rate = len(clips) * repeats / (cpu_seconds() - start)
        mse = np.mean([np.mean((d.astype(np.float64) - c) ** 2) for d, c in zip(decoded, clips)])
        psnr = "lossless" if mse == 0 else f"{10 * np.log10(255 ** 2 / mse):.1f}"
        print(f"{name:<22}{size / seconds * 3600 / 1e9:>14.2f}{rate:>14.1f}{psnr:>10}")


if __name__ == "__main__":
    main()
