//! Integration tests of `nnlab::models`: every zoo model against PyTorch's
//! parameter counts and torchinfo's tables, forward/backward numbers of a
//! small MLP and CNN against torch, BatchNorm running statistics, Dropout,
//! checkpoints through safetensors.

use candle_core::{DType, Device, Tensor, Var};
use nnlab::models::cnn::Cnn;
use nnlab::models::layer_stack::LayerStack;
use nnlab::models::mlp::Mlp;
use nnlab::models::model::{Model, Output};
use nnlab::models::zoo;
use std::collections::HashMap;

/// A test's result: any error fails the test with its message (`?` instead of `.unwrap()`).
type TestResult = Result<(), Box<dyn std::error::Error>>;

// The torch classes of the course (hw1 FullyConnectedModel, hw2 NeuralNetwork,
// hw3 SimpleMLP..CIFAR10CNN, hw4 MLPDigits*, hw5 SimpleConvNet_1..4), written
// as in the course files; run with torch 2.15 + torchinfo 1.8.0:
//
// import torch, torch.nn as nn, torch.nn.functional as F
// class FullyConnectedModel(nn.Module):
//     def __init__(self, input_size=784, num_classes=10, layers=()):
//         super().__init__()
//         L=[]; prev=input_size
//         for s in layers:
//             t=s['type']
//             if t=='linear': L.append(nn.Linear(prev,s['size'])); prev=s['size']
//             elif t=='relu': L.append(nn.ReLU())
//             elif t=='dropout': L.append(nn.Dropout(s.get('rate',0.5)))
//             elif t=='batch_norm': L.append(nn.BatchNorm1d(prev))
//         L.append(nn.Linear(prev,num_classes)); self.layers=nn.Sequential(*L)
//     def forward(self,x): return self.layers(x.view(x.size(0),-1))
// lin=lambda n:{'type':'linear','size':n}; relu={'type':'relu'}
// hw1={'hw1/1_layer':[], 'hw1/2_layers':[lin(512)], 'hw1/3_layers':[lin(512),lin(256),relu],
//  'hw1/5_layers':[lin(512),relu,lin(512),relu,lin(256),relu,lin(128),relu],
//  'hw1/7_layers':[lin(512),relu,lin(400),relu,lin(300),relu,lin(256),relu,lin(256),relu,lin(128),relu],
//  'hw1/dropout_bn':[lin(512),{'type':'dropout','rate':0.3},{'type':'batch_norm'},lin(256),relu]}
// class FullyConnectedLayer(nn.Module):
//     def __init__(self, i, o):
//         super().__init__(); self.W=nn.Parameter(torch.randn(i,o)*torch.sqrt(torch.tensor(2.0/i))); self.b=nn.Parameter(torch.zeros(o))
//     def forward(self,x): return x@self.W+self.b
// class ReluLayer(nn.Module):
//     def forward(self,x): return F.relu(x)
// class NeuralNetwork(nn.Module):
//     def __init__(self, dim_hidden=128, use_bn=False):
//         super().__init__(); self.use_bn=use_bn
//         self.layer_in=FullyConnectedLayer(3*32*32,dim_hidden); self.activation=ReluLayer()
//         self.bn_layer=nn.BatchNorm1d(dim_hidden) if use_bn else None
//         self.layer_out=FullyConnectedLayer(dim_hidden,10)
//     def forward(self,inputs):
//         out=self.activation(self.layer_in(inputs.view(-1,3*32*32)))
//         if self.use_bn: out=self.bn_layer(out)
//         return self.layer_out(out)
// def mlp(sizes):
//     class M(nn.Module):
//         def __init__(self):
//             super().__init__(); self.flatten=nn.Flatten(); L=[]
//             for j,(a,b) in enumerate(zip(sizes,sizes[1:])):
//                 L.append(nn.Linear(a,b))
//                 if j+2<len(sizes): L.append(nn.ReLU())
//             self.layers=nn.Sequential(*L)
//         def forward(self,x): return self.layers(self.flatten(x))
//     return M()
// class BasicCNN(nn.Module):
//     def __init__(self):
//         super().__init__()
//         self.features=nn.Sequential(nn.Conv2d(1,16,kernel_size=3,padding=1),nn.ReLU(),nn.MaxPool2d(2),nn.Conv2d(16,32,kernel_size=3,padding=1),nn.ReLU(),nn.MaxPool2d(2))
//         self.classifier=nn.Sequential(nn.Flatten(),nn.Linear(7*7*32,128),nn.ReLU(),nn.Linear(128,10))
//     def forward(self,x): return self.classifier(self.features(x))
// class ComplexCNN(nn.Module):
//     def __init__(self, cin=1, flat=7*7*64):
//         super().__init__()
//         self.features=nn.Sequential(nn.Conv2d(cin,32,kernel_size=3,padding=1),nn.ReLU(),nn.Conv2d(32,32,kernel_size=3,padding=1),nn.ReLU(),nn.MaxPool2d(2),
//             nn.Conv2d(32,64,kernel_size=3,padding=1),nn.ReLU(),nn.Conv2d(64,64,kernel_size=3,padding=1),nn.ReLU(),nn.MaxPool2d(2))
//         self.classifier=nn.Sequential(nn.Flatten(),nn.Linear(flat,256),nn.ReLU(),nn.Linear(256,10))
//     def forward(self,x): return self.classifier(self.features(x))
// class MLPDigits(nn.Module):
//     def __init__(self, h=52, act=torch.sigmoid, p=None):
//         super().__init__(); self.fc1=nn.Linear(64,h); self.fc2=nn.Linear(h,h); self.fc3=nn.Linear(h,10); self.act=act
//         if p: self.dropout=nn.Dropout(p)
//         self.p=p
//     def forward(self,x):
//         x=x.view(-1,64); x=self.act(self.fc1(x))
//         if self.p: x=self.dropout(x)
//         x=self.act(self.fc2(x))
//         if self.p: x=self.dropout(x)
//         return F.log_softmax(self.fc3(x),dim=1)
// class SimpleConvNet(nn.Module):
//     def __init__(self, v, nc=4):
//         super().__init__(); self.v=v
//         self.conv1=nn.Conv2d(3,32,4); self.mp1=nn.MaxPool2d(3)
//         if v in (2,4): self.bn1=nn.BatchNorm2d(32)
//         if v>=3: self.droupout1=nn.Dropout(0.2)
//         self.relu1=nn.ReLU()
//         self.conv2=nn.Conv2d(32,64,4); self.mp2=nn.MaxPool2d(3)
//         if v>=2: self.bn2=nn.BatchNorm2d(64)
//         if v>=3: self.droupout2=nn.Dropout(0.2)
//         self.relu2=nn.ReLU(); self.flatten=nn.Flatten(); self.fc3=nn.Linear(9216,512)
//         if v>=3: self.droupout3=nn.Dropout(0.2)
//         self.relu3=nn.ReLU(); self.fc4=nn.Linear(512,nc)
//     def forward(self,x):
//         v=self.v; l=self.mp1(self.conv1(x))
//         if v in (2,4): l=self.bn1(l)
//         if v>=3: l=self.droupout1(l)
//         l=self.relu1(l); l=self.mp2(self.conv2(l))
//         if v in (2,4): l=self.bn2(l)
//         if v>=3: l=self.droupout2(l)
//         l=self.relu2(l); o=self.fc3(self.flatten(l))
//         if v>=3: o=self.droupout3(o)
//         return self.fc4(self.relu3(o))
// def zoo():
//     d={}
//     for k,v in hw1.items(): d[k]=(FullyConnectedModel(layers=v),(1,784))
//     d['hw2/net']=(NeuralNetwork(128,False),(1,3,32,32)); d['hw2/net_bn']=(NeuralNetwork(128,True),(1,3,32,32))
//     d['hw3/SimpleMLP']=(mlp([784,256,10]),(1,1,28,28)); d['hw3/MediumMLP']=(mlp([784,512,256,10]),(1,1,28,28)); d['hw3/DeepMLP']=(mlp([784,1024,512,256,128,10]),(1,1,28,28))
//     d['hw3/BasicCNN']=(BasicCNN(),(1,1,28,28)); d['hw3/ComplexCNN']=(ComplexCNN(),(1,1,28,28)); d['hw3/CIFAR10CNN']=(ComplexCNN(3,8*8*64),(1,3,32,32))
//     d['hw4/MLPDigits']=(MLPDigits(52,torch.sigmoid),(1,64)); d['hw4/MLPDigits_tanh']=(MLPDigits(52,torch.tanh),(1,64)); d['hw4/MLPDigits_relu']=(MLPDigits(52,F.relu),(1,64))
//     d['hw4/MLPDigits_12']=(MLPDigits(12,torch.sigmoid),(1,64)); d['hw4/MLPDigits_dropout']=(MLPDigits(24,torch.tanh,0.25),(1,64))
//     for v in range(1,5): d[f'hw5/SimpleConvNet_{v}']=(SimpleConvNet(v),(1,3,128,128))
//     return d
// if __name__=='__main__':
//     for k,(m,_) in zoo().items(): print(f'("{k}", {sum(p.numel() for p in m.parameters())}),')
const TORCH_PARAM_COUNTS: &[(&str, usize)] = &[
    ("hw1/1_layer", 7850),
    ("hw1/2_layers", 407050),
    ("hw1/3_layers", 535818),
    ("hw1/5_layers", 830090),
    ("hw1/7_layers", 904454),
    ("hw1/dropout_bn", 536842),
    ("hw2/net", 394634),
    ("hw2/net_bn", 394890),
    ("hw3/SimpleMLP", 203530),
    ("hw3/MediumMLP", 535818),
    ("hw3/DeepMLP", 1494154),
    ("hw3/BasicCNN", 206922),
    ("hw3/ComplexCNN", 870634),
    ("hw3/CIFAR10CNN", 1116970),
    ("hw4/MLPDigits", 6666),
    ("hw4/MLPDigits_tanh", 6666),
    ("hw4/MLPDigits_relu", 6666),
    ("hw4/MLPDigits_12", 1066),
    ("hw4/MLPDigits_dropout", 2410),
    ("hw5/SimpleConvNet_1", 4755556),
    ("hw5/SimpleConvNet_2", 4755748),
    ("hw5/SimpleConvNet_3", 4755684),
    ("hw5/SimpleConvNet_4", 4755748),
];

#[test]
fn every_zoo_model_has_torchs_parameter_count() -> TestResult {
    let names = zoo::names();
    assert_eq!(names.len(), TORCH_PARAM_COUNTS.len());
    for (name, want) in TORCH_PARAM_COUNTS {
        assert!(names.contains(name), "{name} missing from zoo::names()");
        let m = zoo::build_on(name, &Device::Cpu, DType::F32)?;
        assert_eq!(m.num_params(), *want, "{name}");
        let s = m.summary()?;
        assert_eq!(s.total_params, *want, "{name} summary");
    }
    Ok(())
}

#[test]
fn every_zoo_model_runs_a_batch_of_two() -> TestResult {
    nnlab::seed(1);
    for name in zoo::names() {
        let m = zoo::build_on(name, &Device::Cpu, DType::F32)?;
        let mut shape = vec![2];
        shape.extend_from_slice(m.input_shape());
        let x = Tensor::randn(0f32, 1.0, shape.as_slice(), &Device::Cpu)?;
        let classes = if name.starts_with("hw5") { 4 } else { 10 };
        for train in [false, true] {
            let y = m.forward_t(&x, train)?;
            assert_eq!(y.dims(), &[2, classes], "{name} train={train}");
            let v: Vec<f32> = y.flatten_all()?.to_vec1()?;
            assert!(v.iter().all(|x| x.is_finite()), "{name}");
        }
        let want = if name.starts_with("hw4") {
            Output::LogProbs
        } else {
            Output::Logits
        };
        assert_eq!(m.output(), want, "{name}");
    }
    Ok(())
}

#[test]
fn zoo_names_are_case_insensitive_and_errors_list_them() -> TestResult {
    let m = zoo::build_on("HW3/basiccnn", &Device::Cpu, DType::F32)?;
    assert_eq!(m.name(), "BasicCNN");
    assert_eq!(
        zoo::build_on("simpleconvnet_2", &Device::Cpu, DType::F32)?.name(),
        "SimpleConvNet_2"
    );
    assert_eq!(
        zoo::build_on("hw1/3_layers", &Device::Cpu, DType::F32)?.name(),
        "3 layers"
    );
    assert_eq!(
        zoo::build_on("hw1/1_layer", &Device::Cpu, DType::F32)?.name(),
        "1 layer"
    );
    let e = zoo::build_on("resnet18", &Device::Cpu, DType::F32)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("zoo: unknown model `resnet18`, expected one of: hw1/1_layer"),
        "{e}"
    );
    assert!(e.contains("hw4/MLPDigits_dropout"), "{e}");
    let e = zoo::simple_conv_net(5, 4).unwrap_err().to_string();
    assert_eq!(e, "variant: 5, expected 1, 2, 3 or 4");
    let e = zoo::mlp_digits("gelu", 12, None).unwrap_err().to_string();
    assert_eq!(e, "activation: `gelu`, expected sigmoid, tanh or relu");
    Ok(())
}

#[test]
fn zoo_state_dict_names_follow_the_torch_classes() -> TestResult {
    let names = |n: &str| -> Vec<String> {
        zoo::build_on(n, &Device::Cpu, DType::F32)
            .unwrap()
            .state_dict()
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    assert_eq!(
        names("hw2/net_bn"),
        [
            "layer_in.W",
            "layer_in.b",
            "bn_layer.weight",
            "bn_layer.bias",
            "bn_layer.running_mean",
            "bn_layer.running_var",
            "bn_layer.num_batches_tracked",
            "layer_out.W",
            "layer_out.b"
        ]
    );
    assert_eq!(
        names("hw4/MLPDigits_dropout"),
        [
            "fc1.weight",
            "fc1.bias",
            "fc2.weight",
            "fc2.bias",
            "fc3.weight",
            "fc3.bias"
        ]
    );
    let s3 = names("hw5/SimpleConvNet_3");
    assert_eq!(
        &s3[..4],
        ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"]
    );
    assert_eq!(s3[4], "bn2.weight");
    assert_eq!(names("hw3/BasicCNN")[4], "classifier.1.weight");
    let m = zoo::build_on("hw2/net", &Device::Cpu, DType::F32)?;
    assert_eq!(m.named_params()[0].1.dims(), &[3072, 128]); // hw2 stores W as [in, out]
    Ok(())
}

// torchinfo.summary(model, input_size, verbose=0) of the classes above (its
// "Total mult-adds (Units.MEGABYTES)" is torchinfo 1.8's enum-format bug on
// new Pythons: the intended label is "(M)").
const TORCHINFO: &[(&str, &str)] = &[
    (
        "hw3/BasicCNN",
        r#"==========================================================================================
Layer (type:depth-idx)                   Output Shape              Param #
==========================================================================================
BasicCNN                                 [1, 10]                   --
├─Sequential: 1-1                        [1, 32, 7, 7]             --
│    └─Conv2d: 2-1                       [1, 16, 28, 28]           160
│    └─ReLU: 2-2                         [1, 16, 28, 28]           --
│    └─MaxPool2d: 2-3                    [1, 16, 14, 14]           --
│    └─Conv2d: 2-4                       [1, 32, 14, 14]           4,640
│    └─ReLU: 2-5                         [1, 32, 14, 14]           --
│    └─MaxPool2d: 2-6                    [1, 32, 7, 7]             --
├─Sequential: 1-2                        [1, 10]                   --
│    └─Flatten: 2-7                      [1, 1568]                 --
│    └─Linear: 2-8                       [1, 128]                  200,832
│    └─ReLU: 2-9                         [1, 128]                  --
│    └─Linear: 2-10                      [1, 10]                   1,290
==========================================================================================
Total params: 206,922
Trainable params: 206,922
Non-trainable params: 0
Total mult-adds (M): 1.24
==========================================================================================
Input size (MB): 0.00
Forward/backward pass size (MB): 0.15
Params size (MB): 0.83
Estimated Total Size (MB): 0.98
=========================================================================================="#,
    ),
    (
        "hw2/net_bn",
        r#"==========================================================================================
Layer (type:depth-idx)                   Output Shape              Param #
==========================================================================================
NeuralNetwork                            [1, 10]                   --
├─FullyConnectedLayer: 1-1               [1, 128]                  393,344
├─ReluLayer: 1-2                         [1, 128]                  --
├─BatchNorm1d: 1-3                       [1, 128]                  256
├─FullyConnectedLayer: 1-4               [1, 10]                   1,290
==========================================================================================
Total params: 394,890
Trainable params: 394,890
Non-trainable params: 0
Total mult-adds (M): 0.00
==========================================================================================
Input size (MB): 0.01
Forward/backward pass size (MB): 0.00
Params size (MB): 1.58
Estimated Total Size (MB): 1.59
=========================================================================================="#,
    ),
    (
        "hw1/dropout_bn",
        r#"==========================================================================================
Layer (type:depth-idx)                   Output Shape              Param #
==========================================================================================
FullyConnectedModel                      [1, 10]                   --
├─Sequential: 1-1                        [1, 10]                   --
│    └─Linear: 2-1                       [1, 512]                  401,920
│    └─Dropout: 2-2                      [1, 512]                  --
│    └─BatchNorm1d: 2-3                  [1, 512]                  1,024
│    └─Linear: 2-4                       [1, 256]                  131,328
│    └─ReLU: 2-5                         [1, 256]                  --
│    └─Linear: 2-6                       [1, 10]                   2,570
==========================================================================================
Total params: 536,842
Trainable params: 536,842
Non-trainable params: 0
Total mult-adds (M): 0.54
==========================================================================================
Input size (MB): 0.00
Forward/backward pass size (MB): 0.01
Params size (MB): 2.15
Estimated Total Size (MB): 2.16
=========================================================================================="#,
    ),
    (
        "hw5/SimpleConvNet_3",
        r#"==========================================================================================
Layer (type:depth-idx)                   Output Shape              Param #
==========================================================================================
SimpleConvNet_3                          [1, 4]                    128
├─Conv2d: 1-1                            [1, 32, 125, 125]         1,568
├─MaxPool2d: 1-2                         [1, 32, 41, 41]           --
├─Dropout: 1-3                           [1, 32, 41, 41]           --
├─ReLU: 1-4                              [1, 32, 41, 41]           --
├─Conv2d: 1-5                            [1, 64, 38, 38]           32,832
├─MaxPool2d: 1-6                         [1, 64, 12, 12]           --
├─Dropout: 1-7                           [1, 64, 12, 12]           --
├─ReLU: 1-8                              [1, 64, 12, 12]           --
├─Flatten: 1-9                           [1, 9216]                 --
├─Linear: 1-10                           [1, 512]                  4,719,104
├─Dropout: 1-11                          [1, 512]                  --
├─ReLU: 1-12                             [1, 512]                  --
├─Linear: 1-13                           [1, 4]                    2,052
==========================================================================================
Total params: 4,755,684
Trainable params: 4,755,684
Non-trainable params: 0
Total mult-adds (M): 76.63
==========================================================================================
Input size (MB): 0.20
Forward/backward pass size (MB): 4.74
Params size (MB): 19.02
Estimated Total Size (MB): 23.96
=========================================================================================="#,
    ),
];

#[test]
fn summaries_match_torchinfo() -> TestResult {
    for (name, want) in TORCHINFO {
        let s = zoo::build_on(name, &Device::Cpu, DType::F32)?.summary()?;
        assert_eq!(s.to_string(), *want, "{name}");
    }
    let s = zoo::build_on("hw3/BasicCNN", &Device::Cpu, DType::F32)?.summary()?;
    let df = s.to_dataframe()?;
    assert_eq!(df.shape(), (13, 3));
    assert_eq!(
        df.column("Param #")?.as_materialized_series().u64()?.get(2),
        Some(160)
    );
    assert_eq!(df.column("Param #")?.null_count(), 9);
    let html = s.to_html();
    assert!(
        html.contains("<td style=\"text-align:right\">200,832</td>")
            && html.contains("Total params"),
        "{html}"
    );
    let j: serde_json::Value = serde_json::from_str(&s.to_json()?)?;
    assert_eq!(j["total_params"], 206_922);
    assert_eq!(
        j["rows"][2]["output_shape"],
        serde_json::json!([1, 16, 28, 28])
    );
    Ok(())
}

// Numbers for fixed weights, computed in float64 with:
//
// import torch, torch.nn as nn, torch.nn.functional as F
// torch.set_printoptions(precision=10)
// def fill(t, k):  # deterministic weights: sin(0.37·i + k)·0.5
//     with torch.no_grad():
//         t.copy_((torch.sin(torch.arange(t.numel(), dtype=torch.float64) * 0.37 + k) * 0.5).reshape(t.shape))
// def inp(shape):
//     n = 1
//     for d in shape: n *= d
//     return (torch.cos(torch.arange(n, dtype=torch.float64) * 0.1) * 2.0).reshape(shape)
// # MLP: {"input_size":6,"num_classes":3,"layers":[linear 5, batch_norm, tanh, layer_norm, leaky_relu 0.1, linear 4, sigmoid]}
// mlp = nn.Sequential(nn.Linear(6,5), nn.BatchNorm1d(5), nn.Tanh(), nn.LayerNorm(5), nn.LeakyReLU(0.1), nn.Linear(5,4), nn.Sigmoid(), nn.Linear(4,3)).double()
// for k,(n,p) in enumerate(mlp.named_parameters()): fill(p, k)
// x = inp((4,6)).requires_grad_(True)
// y = mlp(x)
// c = torch.arange(12, dtype=torch.float64).reshape(4,3) / 10 - 0.5
// (y*c).sum().backward()
// print("mlp out", y.flatten().tolist()); print("mlp grad layers.0.weight", mlp[0].weight.grad.flatten().tolist()); print("mlp grad x", x.grad.flatten()[:6].tolist())
// print("mlp running_var", mlp[1].running_var.tolist())
// # CNN: input [2,2,6,6]
// cnn = nn.Sequential(nn.Conv2d(2,3,3,1,1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2,2), nn.Conv2d(3,4,2,1,0), nn.AvgPool2d(2,2), nn.Flatten(), nn.Linear(4,3), nn.LogSoftmax(dim=1)).double()
// for k,(n,p) in enumerate(cnn.named_parameters()): fill(p, k)
// x = inp((2,2,6,6)).requires_grad_(True)
// y = cnn(x)
// c = torch.arange(6, dtype=torch.float64).reshape(2,3) / 5 - 0.5
// (y*c).sum().backward()
// print("cnn out", y.flatten().tolist()); print("cnn grad layers.0.weight", cnn[0].weight.grad.flatten()[:12].tolist()); print("cnn grad layers.4.bias", cnn[4].bias.grad.tolist())
// # BN 2 steps, then eval
// bn = nn.BatchNorm2d(3).double()
// for k,(n,p) in enumerate(bn.named_parameters()): fill(p, k+1)
// bn.train(); bn(inp((2,3,2,2))); bn(inp((3,3,2,2)) * 1.5 + 0.3)
// print("bn running_mean", bn.running_mean.tolist()); print("bn running_var", bn.running_var.tolist()); print("bn nbt", bn.num_batches_tracked.item())
// bn.eval(); print("bn eval out", bn(inp((1,3,2,2))).flatten().tolist())
// # the same CNN with AvgPool2d(2,2) in place of MaxPool2d(2,2): gradients down to the first conv
// cnn2 = nn.Sequential(nn.Conv2d(2,3,3,1,1), nn.BatchNorm2d(3), nn.ReLU(), nn.AvgPool2d(2,2), nn.Conv2d(3,4,2,1,0), nn.AvgPool2d(2,2), nn.Flatten(), nn.Linear(4,3), nn.LogSoftmax(dim=1)).double()
// for k,(n,p) in enumerate(cnn2.named_parameters()): fill(p, k)
// x = inp((2,2,6,6))
// y = cnn2(x)
// (y*c).sum().backward()
// print("cnn2 out", y.flatten().tolist()); print("cnn2 grad layers.0.weight", cnn2[0].weight.grad.flatten()[:12].tolist()); print("cnn2 grad layers.1.weight", cnn2[1].weight.grad.tolist())

/// `sin(0.37·i + k)·0.5`, the `fill` of the script.
fn fill(shape: &[usize], k: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| ((i as f64) * 0.37 + k as f64).sin() * 0.5)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// `cos(0.1·i)·2`, the `inp` of the script.
fn inp(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.1).cos() * 2.0).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Loads `fill(p, k)` into the k-th parameter (torch's `named_parameters` order).
fn load_filled(m: &Model, k0: usize) {
    let params: Vec<String> = m.named_params().into_iter().map(|(n, _)| n).collect();
    let mut sd: HashMap<String, Tensor> = m.state_dict().unwrap().into_iter().collect();
    for (k, name) in params.iter().enumerate() {
        let shape = sd[name].dims().to_vec();
        sd.insert(name.clone(), fill(&shape, k + k0));
    }
    m.load_state_dict(&sd).unwrap();
}

fn close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= tol, "{what}[{i}]: {a} vs torch {b}");
    }
}

fn vec1(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

const MLP_OUT: [f64; 12] = [
    1.0577043192583846,
    -0.6190793781339827,
    -1.1238890543953264,
    1.0693388096073335,
    -0.6121474855816538,
    -1.134266492827612,
    1.0709414902461212,
    -0.6134054906479526,
    -1.136097304192291,
    1.0651694932525355,
    -0.6176000146871143,
    -1.1310859558156758,
];
const MLP_GRAD_W0: [f64; 30] = [
    -4.770824558903465e-05,
    -3.3972386189844514e-05,
    -1.989708593762307e-05,
    -5.622980579815339e-06,
    8.70730774123592e-06,
    2.2950595521589875e-05,
    -0.008198882918366106,
    -0.00834209958250938,
    -0.008401964745155721,
    -0.008377880253388757,
    -0.008270086751488952,
    -0.008079661276495488,
    -1.390006887720186e-05,
    -5.204523191636966e-06,
    3.5430243692722148e-06,
    1.2255171201851656e-05,
    2.084486841480329e-05,
    2.9226290592951606e-05,
    3.4337775707992076e-06,
    2.2365902210648987e-06,
    1.0170556011601394e-06,
    -2.1264110211752381e-07,
    -1.4402131657926378e-06,
    -2.6533950955863268e-06,
    -8.502354234494858e-05,
    -7.039403639666311e-05,
    -5.5061176505876796e-05,
    -3.9178163540248994e-05,
    -2.2903695315105928e-05,
    -6.400380937329471e-06,
];
const MLP_GRAD_X: [f64; 6] = [
    0.0009260911910321332,
    0.0005946995720673527,
    0.00018281815588506572,
    -0.0002538068400575257,
    -0.0006560802708600422,
    -0.0009695563148133366,
];
const MLP_RUNNING_VAR: [f64; 5] = [
    1.5273489540833625,
    0.903862007764956,
    1.436501327441747,
    1.7733930557301785,
    1.0594836819013462,
];

#[test]
fn mlp_forward_backward_matches_torch() -> TestResult {
    let m = Mlp::from_json(
        r#"{"input_size":6,"num_classes":3,"layers":[{"type":"linear","size":5},{"type":"batch_norm"},"tanh",{"type":"layer_norm"},{"type":"leaky_relu","slope":0.1},{"type":"linear","size":4},"sigmoid"]}"#,
    );
    // from_json builds f32 on the default device: rebuild the same config in f64 on the CPU
    let cfg = m?;
    assert_eq!(cfg.name(), "3 layers");
    let mut b = Mlp::new(6, 3)
        .linear(5)
        .batch_norm()
        .tanh()
        .layer_norm()
        .leaky_relu(0.1)
        .linear(4)
        .sigmoid();
    b = b.device(&Device::Cpu).dtype(DType::F64);
    let m = b.build()?;
    load_filled(&m, 0);
    let x = Var::from_tensor(&inp(&[4, 6]))?;
    let y = m.forward_t(x.as_tensor(), true)?;
    close(&vec1(&y), &MLP_OUT, 1e-9, "mlp out");
    let c = ((Tensor::arange(0f64, 12., &Device::Cpu)?.reshape((4, 3))? / 10.)? - 0.5)?;
    let grads = (y * c)?.sum_all()?.backward()?;
    let w0 = &m.named_params()[0].1;
    close(
        &vec1(grads.get(w0).ok_or("None from grads.get(w0)")?),
        &MLP_GRAD_W0,
        1e-9,
        "grad layers.0.weight",
    );
    close(
        &vec1(
            &grads
                .get(&x)
                .ok_or("None from grads.get(&x)")?
                .narrow(0, 0, 1)?,
        ),
        &MLP_GRAD_X,
        1e-9,
        "grad x",
    );
    let sd: HashMap<String, Tensor> = m.state_dict()?.into_iter().collect();
    close(
        &vec1(&sd["layers.1.running_var"]),
        &MLP_RUNNING_VAR,
        1e-9,
        "running_var",
    );
    Ok(())
}

const CNN_OUT: [f64; 6] = [
    -0.8767069516721976,
    -1.5821543411558183,
    -0.9720225422551708,
    -1.0000632929034137,
    -1.49478650745034,
    -0.8968622995756621,
];
const CNN_GRAD_W0: [f64; 12] = [
    0.0017387347472567062,
    0.0028543659884464035,
    0.0009832404780704233,
    0.002241752287996745,
    0.002059408581437882,
    0.0014479248094213277,
    -0.0005646843143930441,
    -0.0013882263116476961,
    -0.001159481067595572,
    0.0006945461047752754,
    0.00020183241221005633,
    0.0012174860500983738,
];
const CNN_GRAD_B4: [f64; 4] = [
    0.12563879121174187,
    -0.006231170390235713,
    -0.13725777231163658,
    -0.2497071786559756,
];

fn small_cnn(max_pool: bool) -> Model {
    let c = Cnn::new(&[2, 6, 6])
        .conv2d(3, 3, 1, 1)
        .batch_norm2d()
        .relu();
    let c = if max_pool {
        c.max_pool(2, 2)
    } else {
        c.avg_pool(2, 2)
    };
    c.conv2d(4, 2, 1, 0)
        .avg_pool(2, 2)
        .flatten()
        .linear(3)
        .log_softmax()
        .device(&Device::Cpu)
        .dtype(DType::F64)
        .build("small")
        .unwrap()
}

/// Forward in train mode, `backward` of `Σ y·c`: the output and the grads.
fn run_small_cnn(m: &Model) -> (Vec<f64>, candle_core::backprop::GradStore) {
    load_filled(m, 0);
    let y = m.forward_t(&inp(&[2, 2, 6, 6]), true).unwrap();
    let c = ((Tensor::arange(0f64, 6., &Device::Cpu)
        .unwrap()
        .reshape((2, 3))
        .unwrap()
        / 5.)
        .unwrap()
        - 0.5)
        .unwrap();
    let out = vec1(&y);
    (out, (y * c).unwrap().sum_all().unwrap().backward().unwrap())
}

#[test]
fn cnn_forward_backward_matches_torch() -> TestResult {
    let m = small_cnn(true);
    assert_eq!(m.output(), Output::LogProbs);
    let (y, grads) = run_small_cnn(&m);
    close(&y, &CNN_OUT, 1e-9, "cnn out");
    let p = m.named_params();
    assert_eq!(p[5].0, "layers.4.bias");
    close(
        &vec1(grads.get(&p[5].1).ok_or("None from grads.get(&p[5].1)")?),
        &CNN_GRAD_B4,
        1e-9,
        "grad layers.4.bias",
    );
    // with average pooling the gradient reaches the first conv through BatchNorm
    let m = small_cnn(false);
    let (y, grads) = run_small_cnn(&m);
    close(&y, &CNN2_OUT, 1e-9, "cnn2 out");
    let p = m.named_params();
    close(
        &vec1(grads.get(&p[0].1).ok_or("None from grads.get(&p[0].1)")?)[..12],
        &CNN2_GRAD_W0,
        1e-9,
        "cnn2 grad layers.0.weight",
    );
    close(
        &vec1(grads.get(&p[2].1).ok_or("None from grads.get(&p[2].1)")?),
        &CNN2_GRAD_BN_W,
        1e-9,
        "cnn2 grad layers.1.weight",
    );
    Ok(())
}

/// Candle 0.11's own max_pool2d backward multiplies the gradient by
/// (number of maxima)/k² instead of dividing by the number of maxima (4× too
/// small under a MaxPool2d(2)); `crate::ops::pool` has its own backward, so
/// the gradients below the pool match torch.
#[test]
fn cnn_gradient_through_max_pool_matches_torch() -> TestResult {
    let m = small_cnn(true);
    let (_, grads) = run_small_cnn(&m);
    let p = m.named_params();
    assert_eq!(p[0].0, "layers.0.weight");
    close(
        &vec1(grads.get(&p[0].1).ok_or("None from grads.get(&p[0].1)")?)[..12],
        &CNN_GRAD_W0,
        1e-9,
        "grad layers.0.weight",
    );
    Ok(())
}

const CNN2_OUT: [f64; 6] = [
    -0.9378027977431548,
    -1.545462320297208,
    -0.9281111762129842,
    -1.019251931476852,
    -1.4748415006924382,
    -0.8908174046259674,
];
const CNN2_GRAD_W0: [f64; 12] = [
    0.002775388926324195,
    0.003150701969584592,
    0.0019372342823260262,
    0.001069162077969998,
    0.0011581140672324327,
    0.00027745738433104485,
    -0.0008580746832839467,
    -0.0010613769453216087,
    -0.001453879830400858,
    -0.0012275901336373295,
    -0.0012268839966142686,
    -0.00016477648960535764,
];
const CNN2_GRAD_BN_W: [f64; 3] = [
    0.05242203045104071,
    -0.17646834859155733,
    -0.030694221413448547,
];

const BN_RUNNING_MEAN: [f64; 3] = [0.175558531934064, 0.05975586597956659, -0.06074459694095151];
const BN_RUNNING_VAR: [f64; 3] = [1.416715912776321, 1.4727757801130807, 1.3682282800331345];
const BN_EVAL_OUT: [f64; 12] = [
    1.0995543397681395,
    1.096022473192055,
    1.0854621627071497,
    1.0679789234450143,
    1.068224466776531,
    1.0331178148156521,
    0.9909310271476147,
    0.9420856202097002,
    0.8081509442101442,
    0.7448670160572107,
    0.6763491524055423,
    0.6032819610997516,
];

#[test]
fn batch_norm_running_stats_after_two_steps_match_torch() -> TestResult {
    let m = Cnn::new(&[3, 2, 2])
        .batch_norm2d()
        .device(&Device::Cpu)
        .dtype(DType::F64)
        .build("bn")?;
    load_filled(&m, 1);
    m.forward_t(&inp(&[2, 3, 2, 2]), true)?;
    m.forward_t(&((inp(&[3, 3, 2, 2]) * 1.5)? + 0.3)?, true)?;
    let sd: HashMap<String, Tensor> = m.state_dict()?.into_iter().collect();
    close(
        &vec1(&sd["layers.0.running_mean"]),
        &BN_RUNNING_MEAN,
        1e-12,
        "running_mean",
    );
    close(
        &vec1(&sd["layers.0.running_var"]),
        &BN_RUNNING_VAR,
        1e-12,
        "running_var",
    );
    assert_eq!(sd["layers.0.num_batches_tracked"].to_vec0::<i64>()?, 2);
    assert_eq!(sd["layers.0.num_batches_tracked"].dtype(), DType::I64);
    close(
        &vec1(&m.forward(&inp(&[1, 3, 2, 2]))?),
        &BN_EVAL_OUT,
        1e-12,
        "eval out",
    );
    // eval leaves the statistics alone; training with one value per channel is an error like torch's
    let sd2: HashMap<String, Tensor> = m.state_dict()?.into_iter().collect();
    close(
        &vec1(&sd2["layers.0.running_mean"]),
        &vec1(&sd["layers.0.running_mean"]),
        0.0,
        "after eval",
    );
    let one = Cnn::new(&[3])
        .batch_norm()
        .device(&Device::Cpu)
        .build("bn1")?;
    let e = one
        .forward_t(&Tensor::ones((1, 3), DType::F32, &Device::Cpu)?, true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected more than 1 value per channel"), "{e}");
    Ok(())
}

#[test]
fn dropout_is_identity_in_eval_and_drops_p_in_train() -> TestResult {
    nnlab::seed(3);
    let m = Cnn::new(&[1000])
        .dropout(0.25)
        .device(&Device::Cpu)
        .build("d")?;
    let x = Tensor::ones((4, 1000), DType::F32, &Device::Cpu)?;
    assert_eq!(vec1(&m.forward(&x)?.to_dtype(DType::F64)?), vec![1.0; 4000]);
    let y = vec1(&m.forward_t(&x, true)?.to_dtype(DType::F64)?);
    let zeros = y.iter().filter(|v| **v == 0.0).count() as f64 / 4000.0;
    assert!((zeros - 0.25).abs() < 0.03, "{zeros}");
    assert!(y.iter().all(|v| *v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
    // each training pass draws a new mask
    assert_ne!(vec1(&m.forward_t(&x, true)?.to_dtype(DType::F64)?), y);
    // the hw4 model calls its one Dropout twice: eval is deterministic
    let d = zoo::build_on("hw4/MLPDigits_dropout", &Device::Cpu, DType::F32)?;
    let x = Tensor::ones((3, 1, 8, 8), DType::F32, &Device::Cpu)?;
    assert_eq!(
        vec1(&d.forward(&x)?.to_dtype(DType::F64)?),
        vec1(&d.forward(&x)?.to_dtype(DType::F64)?)
    );
    Ok(())
}

#[test]
fn state_dict_round_trips_through_safetensors() -> TestResult {
    nnlab::seed(9);
    let a = zoo::build_on("hw1/dropout_bn", &Device::Cpu, DType::F32)?;
    let x = Tensor::randn(0f32, 1.0, (8, 1, 28, 28), &Device::Cpu)?;
    a.forward_t(&x, true)?; // moves the BatchNorm statistics
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("m.safetensors");
    a.save_safetensors(&path)?;
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())?
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    let b = zoo::build_on("hw1/dropout_bn", &Device::Cpu, DType::F32)?;
    assert_ne!(
        vec1(&a.forward(&x)?.to_dtype(DType::F64)?),
        vec1(&b.forward(&x)?.to_dtype(DType::F64)?)
    );
    b.load_safetensors(&path)?;
    let (sa, sb) = (a.state_dict()?, b.state_dict()?);
    assert_eq!(sa.len(), 11);
    for ((na, ta), (nb, tb)) in sa.iter().zip(&sb) {
        assert_eq!(na, nb);
        let (va, vb) = (
            vec1(&ta.to_dtype(DType::F64)?),
            vec1(&tb.to_dtype(DType::F64)?),
        );
        assert_eq!(va, vb, "{na}");
    }
    assert_eq!(
        vec1(&a.forward(&x)?.to_dtype(DType::F64)?),
        vec1(&b.forward(&x)?.to_dtype(DType::F64)?)
    );
    // state_dict is a deep copy: training does not change a copy taken before
    let before = a.state_dict()?;
    a.forward_t(&x, true)?;
    let rm = |sd: &Vec<(String, Tensor)>| {
        vec1(
            &sd.iter()
                .find(|(n, _)| n == "layers.2.running_mean")
                .unwrap()
                .1
                .to_dtype(DType::F64)
                .unwrap(),
        )
    };
    assert_ne!(rm(&before), rm(&a.state_dict()?));

    // errors: wrong model, wrong shape, missing file, not a safetensors file
    let c = zoo::build_on("hw1/2_layers", &Device::Cpu, DType::F32)?;
    let e = c.load_safetensors(&path).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "state dict of 2 layers: missing keys [layers.1.weight, layers.1.bias], unexpected keys [layers.2.bias, "
        ),
        "{e}"
    );
    let mut sd: HashMap<String, Tensor> = b.state_dict()?.into_iter().collect();
    sd.insert(
        "layers.0.bias".into(),
        Tensor::zeros(3, DType::F32, &Device::Cpu)?,
    );
    let e = b.load_state_dict(&sd).unwrap_err().to_string();
    assert_eq!(e, "shape mismatch at state dict of 3 layers + dropout + batch norm: `layers.0.bias`: shape [3], expected [512]");
    let e = b
        .load_safetensors(dir.path().join("none.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("none.safetensors: not found"), "{e}");
    std::fs::write(dir.path().join("bad.safetensors"), b"junk")?;
    let e = b
        .load_safetensors(dir.path().join("bad.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.safetensors: not a safetensors file"), "{e}");
    Ok(())
}

#[test]
fn forward_reports_bad_inputs() -> TestResult {
    let m = zoo::build_on("hw3/BasicCNN", &Device::Cpu, DType::F32)?;
    let e = m
        .forward(&Tensor::zeros((2, 3, 28, 28), DType::F32, &Device::Cpu)?)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("BasicCNN")
            && e.contains("[2, 3, 28, 28]")
            && e.contains("expected [B, 1, 28, 28]"),
        "{e}"
    );
    // a flat batch of the right size is reshaped
    assert_eq!(
        m.forward(&Tensor::zeros((2, 784), DType::F32, &Device::Cpu)?)?
            .dims(),
        &[2, 10]
    );
    let mlp = zoo::build_on("hw1/5_layers", &Device::Cpu, DType::F32)?;
    let e = mlp
        .forward(&Tensor::zeros((2, 3, 28, 28), DType::F32, &Device::Cpu)?)
        .unwrap_err()
        .to_string();
    assert!(e.contains("2352 values per sample, expected 784"), "{e}");
    // a CNN input too small for its layers names the layer
    let e = m
        .forward(&Tensor::zeros((2, 1, 8, 8), DType::F32, &Device::Cpu)?)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("BasicCNN: layer 7 `classifier.1` (Linear)"),
        "{e}"
    );
    Ok(())
}

#[test]
fn models_can_move_between_threads_and_print_like_torch() -> TestResult {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Model>();
    send_sync::<nnlab::models::summary::Summary>();
    let m = zoo::build_on("hw4/MLPDigits_dropout", &Device::Cpu, DType::F32)?;
    assert_eq!(
        m.repr(),
        "MLPDigits_dropout(\n  (fc1): Linear(in_features=64, out_features=24, bias=True)\n  \
         (fc2): Linear(in_features=24, out_features=24, bias=True)\n  \
         (fc3): Linear(in_features=24, out_features=10, bias=True)\n  \
         (dropout): Dropout(p=0.25, inplace=False)\n)"
    );
    Ok(())
}

/// The model's forward fuses Conv2d + ReLU + MaxPool2d (either order) and
/// Conv2d + ReLU into single ops; for every CNN of the zoo its output and
/// the gradients of all parameters equal a run of the layers one by one.
#[test]
fn fused_forward_equals_the_layers_one_by_one() -> TestResult {
    for name in [
        "hw3/BasicCNN",
        "hw3/ComplexCNN",
        "hw3/CIFAR10CNN",
        "hw5/SimpleConvNet_1",
        "hw5/SimpleConvNet_3",
        "hw5/SimpleConvNet_4",
    ] {
        let m = zoo::build(name)?;
        let shape = [&[2][..], m.input_shape()].concat();
        let x = Tensor::randn(0f32, 1.0, shape, &Device::Cpu)?;
        let fused = m.forward_t(&x, false)?;
        let mut h = x.clone();
        for &i in m.forward_order() {
            h = m.entries()[i].layer.forward_t(&h, false)?;
        }
        let scale = max_abs(&h);
        let d = max_abs(&(&fused - &h)?);
        assert!(
            d <= 1e-5 * scale,
            "{name}: outputs differ by {d} (scale {scale})"
        );
        let r = Tensor::randn(0f32, 1.0, h.dims(), &Device::Cpu)?;
        let g_fused = (&fused * &r)?.sum_all()?.backward()?;
        let g_layers = (&h * &r)?.sum_all()?.backward()?;
        for (pname, v) in m.named_params() {
            let (a, b) = match (g_fused.get(&v), g_layers.get(&v)) {
                (Some(a), Some(b)) => (a, b),
                // SimpleConvNet_3 registers bn2 but never calls it
                (None, None) => continue,
                (a, b) => panic!(
                    "{name}: {pname}: a gradient on one side only ({}, {})",
                    a.is_some(),
                    b.is_some()
                ),
            };
            let scale = max_abs(b);
            let d = max_abs(&(a - b)?);
            assert!(
                d <= 1e-4 * scale.max(1e-6),
                "{name}: gradient of {pname} differs by {d} (scale {scale})"
            );
        }
    }
    Ok(())
}

/// `max |t|` of an f32 tensor.
fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}
