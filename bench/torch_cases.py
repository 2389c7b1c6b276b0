"""The PyTorch side of `nnlab bench` (bench/run): the same four cases, same
data files read the same way, same models, batch sizes and optimizer, on the
CPU with torch.set_num_threads(N), or on a GPU with --device cuda (PyTorch's
defaults: cuDNN, TF32 convolutions). Prints one JSON line per run, the format
of `nnlab bench --json`.

  python bench/torch_cases.py --case mlp5-mnist [--epochs N] [--limit N] [--threads N] [--device cuda]
  python bench/torch_cases.py --case matmul      # f32 1024^3 torch.mm, best of 10

Data is read and decoded before the clock starts (tensors in memory); the
timed part is the training epochs: shuffled index batches, forward, cross
entropy, backward, Adam 1e-3 step, plus the running loss and accuracy a
training loop keeps (nnlab's Learner keeps them too).
  mlp5-mnist / basiccnn-mnist: MNIST train .gz (numpy), x = (p/255 - 0.1307)/0.3081, batch 64.
  cifarcnn: cifar10-bin-subset/cifar-10-binary-subset.tar.gz (data_batch_1 + test_batch,
    2,000 records) repeated to 10,000, normalized with its channel mean/std, batch 64.
  convnet4-mri: brain-tumor-mri/Training decoded with PIL, RGB, resized to 128x128
    bilinear, normalized with its channel mean/std, batch 256 (the decoded array is
    cached under $HOME/.cache/nnlab/torch-bench, as nnlab caches its own decode).
"""
import argparse, gzip, hashlib, io, json, os, resource, sys, tarfile, time
import numpy as np
import torch
import torch.nn as nn


def mnist(root):
    def idx(name, offset):
        with gzip.open(os.path.join(root, "mnist", name)) as f:
            return np.frombuffer(bytearray(f.read()), np.uint8, offset=offset)  # writable: no torch warning
    x = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    y = idx("train-labels-idx1-ubyte.gz", 8)
    return x, y


def cifar_subset(root, repeat_to=10_000):
    path = os.path.join(root, "cifar10-bin-subset", "cifar-10-binary-subset.tar.gz")
    recs = {}
    with tarfile.open(path, "r:gz") as t:
        for m in t.getmembers():
            base = os.path.basename(m.name)
            if base in ("data_batch_1.bin", "test_batch.bin"):
                recs[base] = np.frombuffer(t.extractfile(m).read(), np.uint8).reshape(-1, 3073)
    r = np.concatenate([recs["data_batch_1.bin"], recs["test_batch.bin"]])
    order = np.arange(repeat_to) % len(r)
    return r[order, 1:].reshape(-1, 3, 32, 32), r[order, 0]


def image_folder(folder, size=128):
    from PIL import Image
    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)) and not d.startswith("."))
    files = []
    for ci, c in enumerate(classes):
        for dirpath, dirnames, names in os.walk(os.path.join(folder, c)):
            dirnames.sort()
            for n in sorted(names):
                if not n.startswith(".") and n.lower().rsplit(".", 1)[-1] in ("jpg", "jpeg", "png", "bmp"):
                    files.append((os.path.join(dirpath, n), ci))
    key = hashlib.md5(repr([(f, os.path.getsize(f), size) for f, _ in files]).encode()).hexdigest()
    cache = os.path.join(os.path.expanduser("~"), ".cache", "nnlab", "torch-bench", f"folder-{key}.npz")
    if os.path.exists(cache):
        z = np.load(cache)
        return z["x"], z["y"]
    x = np.empty((len(files), 3, size, size), np.uint8)
    for i, (f, _) in enumerate(files):
        im = Image.open(f).convert("RGB").resize((size, size), Image.BILINEAR)
        x[i] = np.asarray(im).transpose(2, 0, 1)
    y = np.array([c for _, c in files], np.uint8)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    tmp = cache + ".tmp.npz"
    np.savez(tmp, x=x, y=y)
    os.replace(tmp, cache)
    return x, y


def to_tensor(x, mean, std):
    """(x/255 - mean)/std per channel, in place on one float32 copy (no temporaries)."""
    t = torch.from_numpy(x).float()
    t.div_(255.0)
    t.sub_(torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
    t.div_(torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
    return t


def channel_stats(x):
    """Per-channel mean and (population) std of x/255, from byte histograms (as nnlab's)."""
    v = np.arange(256) / 255.0
    means, stds = [], []
    for c in range(x.shape[1]):
        h = np.bincount(x[:, c].ravel(), minlength=256).astype(np.float64)
        m = (h * v).sum() / h.sum()
        means.append(m)
        stds.append(float(np.sqrt((h * (v - m) ** 2).sum() / h.sum())))
    return means, stds


# --- models, copied from /work/shared/course/*.md ---------------------------

def mlp5():  # hw1 config "5_layers": 784-512-512-256-128-10
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


class BasicCNN(nn.Module):  # hw3
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(7 * 7 * 32, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


class CIFAR10CNN(nn.Module):  # hw3
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(8 * 8 * 64, 256), nn.ReLU(), nn.Linear(256, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


class SimpleConvNet_4(nn.Module):  # hw5, 4 classes
    def __init__(self, num_classes=4):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 4)
        self.mp1 = nn.MaxPool2d(3)
        self.bn1 = nn.BatchNorm2d(32)
        self.droupout1 = nn.Dropout(0.2)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 64, 4)
        self.mp2 = nn.MaxPool2d(3)
        self.bn2 = nn.BatchNorm2d(64)
        self.droupout2 = nn.Dropout(0.2)
        self.relu2 = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc3 = nn.Linear(9216, 512)
        self.droupout3 = nn.Dropout(0.2)
        self.relu3 = nn.ReLU()
        self.fc4 = nn.Linear(512, num_classes)

    def forward(self, x):
        layer1 = self.mp1(self.conv1(x))
        layer1 = self.relu1(self.droupout1(self.bn1(layer1)))
        layer2 = self.mp2(self.conv2(layer1))
        layer2 = self.relu2(self.droupout2(self.bn2(layer2)))
        out = self.flatten(layer2)
        out = self.relu3(self.droupout3(self.fc3(out)))
        return self.fc4(out)


def load_case(name, root):
    """(model, x float32 tensor, y long tensor, batch size) of a case."""
    if name in ("mlp5-mnist", "basiccnn-mnist"):
        x, y = mnist(root)
        model, xt, batch = (mlp5() if name == "mlp5-mnist" else BasicCNN()), to_tensor(x, [0.1307], [0.3081]), 64
    elif name == "cifarcnn":
        x, y = cifar_subset(root)
        model, xt, batch = CIFAR10CNN(), to_tensor(x, *channel_stats(x)), 64
    elif name == "convnet4-mri":
        x, y = image_folder(os.path.join(root, "brain-tumor-mri", "Training"))
        model, xt, batch = SimpleConvNet_4(4), to_tensor(x, *channel_stats(x)), 256
    else:
        sys.exit(f"--case: `{name}` is not a benchmark case, expected one of "
                 "mlp5-mnist, basiccnn-mnist, cifarcnn, convnet4-mri, matmul")
    return model, xt, torch.from_numpy(y.astype(np.int64)), batch


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--case", required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--limit", type=int)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    a = p.parse_args()
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.case == "matmul":
        n = 1024
        ma, mb = torch.rand(n, n), torch.rand(n, n)
        best = float("inf")
        for _ in range(11):
            t = time.perf_counter()
            torch.mm(ma, mb)
            best = min(best, time.perf_counter() - t)
        print(json.dumps({"case": "matmul", "size": n, "seconds": best, "gflops": 2 * n**3 / best / 1e9,
                          "threads": torch.get_num_threads()}))
        return
    root = os.environ.get("NNLAB_DATA_MIRROR", "../shared/data")
    model, x, y, batch = load_case(a.case, root)
    if a.limit:
        x, y = x[:a.limit].contiguous(), y[:a.limit].contiguous()
    n = len(x)
    if cuda:  # the whole set on the GPU once (nnlab's loader uploads each batch: BENCHMARKS.md, CUDA)
        model, x, y = model.to(dev), x.to(dev), y.to(dev)
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    t = time.perf_counter()
    for _ in range(a.epochs):
        perm = torch.randperm(n, device=dev)
        loss_sum, correct = 0.0, 0
        for i in range(0, n, batch):
            b = perm[i:i + batch]
            xb, yb = x[b], y[b]
            opt.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(b)
            correct += (out.argmax(1) == yb).sum().item()
    if cuda:
        torch.cuda.synchronize(dev)
    secs = time.perf_counter() - t
    gpu = {"device": str(dev), "gpu_peak_allocated_mb": torch.cuda.max_memory_allocated(dev) / 2**20} if cuda else {}
    print(json.dumps({**gpu, "case": a.case, "epochs": a.epochs, "samples": n, "seconds_per_epoch": secs / a.epochs,
                      "samples_per_s": n * a.epochs / secs, "peak_rss_mb": peak_rss_mb(),
                      "threads": torch.get_num_threads(), "final_loss": loss_sum / n,
                      "params": sum(p.numel() for p in model.parameters()),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
