"""The PyTorch side of `cargo bench --bench train_epoch`: one epoch of MNIST
(60,000 images, batch 64, shuffled, Adam 1e-3, normalize 0.1307/0.3081) for
hw1's 5-layer MLP and hw3's BasicCNN, with the data already in memory as
tensors (no DataLoader workers). Threads = $NNLAB_THREADS or 2."""
import gzip, os, sys, time
import numpy as np, torch, torch.nn as nn

torch.set_num_threads(int(os.environ.get("NNLAB_THREADS", "2")))
torch.manual_seed(0)
root = os.path.join(os.environ.get("NNLAB_DATA_MIRROR", "../shared/data"), "mnist")

def idx(name, offset):
    with gzip.open(os.path.join(root, name)) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)

def images(name):
    return torch.tensor(idx(name, 16).reshape(-1, 1, 28, 28), dtype=torch.float32).div(255).sub(0.1307).div(0.3081)

xtr, ytr = images("train-images-idx3-ubyte.gz"), torch.tensor(idx("train-labels-idx1-ubyte.gz", 8), dtype=torch.long)
xte, yte = images("t10k-images-idx3-ubyte.gz"), torch.tensor(idx("t10k-labels-idx1-ubyte.gz", 8), dtype=torch.long)

def mlp5():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))

def basic_cnn():
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(7 * 7 * 32, 128), nn.ReLU(), nn.Linear(128, 10))

cases = {"hw1/5_layers": mlp5, "hw3/BasicCNN": basic_cnn}
for name in sys.argv[1:] or list(cases):
    model = cases[name]()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = nn.CrossEntropyLoss()
    t = time.perf_counter()
    perm = torch.randperm(len(xtr))
    model.train()
    for i in range(0, len(xtr), 64):
        b = perm[i:i + 64]
        opt.zero_grad()
        loss_fn(model(xtr[b]), ytr[b]).backward()
        opt.step()
    secs = time.perf_counter() - t
    model.eval()
    with torch.no_grad():
        acc = (model(xte).argmax(1) == yte).float().mean().item()
    print(f"{name}: {secs:.2f} s/epoch, test accuracy {acc:.4f}, {torch.get_num_threads()} threads (torch {torch.__version__})")
