"""One training step (forward + backward) of hw3's BasicCNN at batch 64 on
1x28x28 inputs in PyTorch CPU, median of 15 after 3 warm-ups: the torch side
of `cargo bench -p nnlab --bench conv_step`. Threads = $NNLAB_THREADS or 2."""
import os, time, statistics
import torch, torch.nn as nn

torch.set_num_threads(int(os.environ.get("NNLAB_THREADS", "2")))
net = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(7 * 7 * 32, 128), nn.ReLU(), nn.Linear(128, 10))
x = torch.rand(64, 1, 28, 28)
y = torch.arange(64) // 10 % 10
loss_fn = nn.CrossEntropyLoss()

def step():
    net.zero_grad(set_to_none=True)
    loss = loss_fn(net(x), y)
    loss.backward()

for _ in range(3):
    step()
times = []
for _ in range(15):
    t = time.perf_counter(); step(); times.append((time.perf_counter() - t) * 1e3)
print(f"basiccnn step, batch 64, {torch.get_num_threads()} threads: torch {statistics.median(times):.2f} ms")
