"""Feature-space tools: t-SNE, neuron activation, trigger activation change (TAC), top activating
images, activation distribution over classes, feature maps.

Neuron-level tools work on a layer's channels (default: the end of the convolutional trunk, via
the core's `last_feature_map`); a 2-D layer's units are its neurons."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from bdcore import Analysis, AnalysisContext, AnalysisResult, BdbError, FeatureTap, Sample, as_picture

# shared helpers ---------------------------------------------------------------------------------


def paired_bd_test(ctx: AnalysisContext, n: int = 300) -> tuple[torch.Tensor, torch.Tensor, Sample]:
    """Clean test images and the same images with the test trigger (the backdoor test set)."""
    s = ctx.sample("bd-test", default_n=n)
    clean = ctx.data.x_test[s.index].float().div(255.0).to(ctx.device)
    return clean, s.x, s


@torch.no_grad()
def trigger_activation_change(model, layer_out, clean: torch.Tensor, triggered: torch.Tensor) -> torch.Tensor:
    """TAC per channel: mean over images of || f_k(x + trigger) - f_k(x) ||_2, f_k the channel's map
    (a unit's value for a 2-D layer). layer_out(model, x) -> the layer's output."""
    a, b = layer_out(model, clean), layer_out(model, triggered)
    d = (b - a).flatten(2) if a.dim() > 2 else (b - a).unsqueeze(2)
    return d.norm(dim=2).mean(0).cpu()


def _layer_out(ctx: AnalysisContext, layer: str):
    def out(model, x):
        feats = []
        mod = ctx.module(layer, model)
        with FeatureTap(mod) as tap:
            for s in range(0, len(x), 256):
                model(x[s:s + 256])
                feats.append(tap.value.float())
        return torch.cat(feats)
    return out


def tac_of(ctx: AnalysisContext, model=None, n: int = 300) -> tuple[str, torch.Tensor]:
    """The analysis layer and its TAC on the run's model (or `model`)."""
    layer = ctx.map_layer()
    clean, trig, _ = paired_bd_test(ctx, n)
    model = model if model is not None else ctx.model
    model.eval()
    return layer, trigger_activation_change(model, _layer_out(ctx, layer), clean, trig)


def _finish(fig: Figure, ctx: AnalysisContext, title: str) -> None:
    fig.suptitle(f"{title}\n{ctx.label_of()}", fontsize=10)


def knn_separation(emb: np.ndarray, positive: np.ndarray, k: int = 10) -> float:
    """AUROC of the share of poisoned samples among each sample's k nearest neighbours (itself
    excluded) as a score for being poisoned: 0.5 when poison is spread like clean data, 1 when it
    forms its own clusters."""
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import NearestNeighbors

    if positive.all() or not positive.any():
        return float("nan")
    k = min(k, len(emb) - 1)
    idx = NearestNeighbors(n_neighbors=k + 1).fit(emb).kneighbors(emb, return_distance=False)[:, 1:]
    return float(roc_auc_score(positive, positive[idx].mean(1)))


# tools ------------------------------------------------------------------------------------------


class TSNE(Analysis):
    """scikit-learn's t-SNE of a layer's features (PCA first); colour = true class, black-edged X =
    poisoned. Number: how well poisoned samples separate (k-NN AUROC, chance 0.5)."""

    method = "t-SNE"
    default_n = 1000

    def embed(self, f: np.ndarray, seed: int) -> tuple[np.ndarray, dict]:
        from sklearn.manifold import TSNE as SKTSNE

        perplexity = min(self.config.perplexity, max(2.0, (len(f) - 1) / 3))
        emb = SKTSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(f)
        return emb, {"perplexity": float(perplexity)}

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        from sklearn.decomposition import PCA

        c = self.config
        s = ctx.sample(default_split="mixed", default_n=self.default_n)
        layer = ctx.feature_layer()
        f = ctx.features(s.x, layer).numpy().astype(np.float64)
        if f.shape[1] > c.pca and len(f) > c.pca:
            f = PCA(n_components=c.pca, random_state=ctx.seed).fit_transform(f)
        emb, extra = self.embed(f, ctx.seed)
        pois = s.poisoned.numpy()
        sep = knn_separation(emb, pois, c.neighbours)
        feat_sep = knn_separation(f, pois, c.neighbours)
        fig = Figure(figsize=(7.5, 6.5))
        ax = fig.add_subplot(1, 1, 1)
        y = s.y.numpy()
        cmap = "tab10" if ctx.num_classes <= 10 else "tab20"
        sc = ax.scatter(emb[~pois, 0], emb[~pois, 1], c=y[~pois], cmap=cmap, s=9, vmin=0,
                        vmax=max(ctx.num_classes - 1, 1), alpha=0.8)
        if pois.any():
            ax.scatter(emb[pois, 0], emb[pois, 1], c=y[pois], cmap=cmap, s=30, vmin=0,
                       vmax=max(ctx.num_classes - 1, 1), marker="X", edgecolors="black", linewidths=0.7,
                       label=f"poisoned ({int(pois.sum())})")
            ax.legend(loc="best")
        if ctx.num_classes <= 20:
            fig.colorbar(sc, ax=ax, fraction=0.046, label="true class")
        ax.set_xticks([])
        ax.set_yticks([])
        _finish(fig, ctx, f"{self.method} of {layer} on {s.split} (n={len(s)}); poisoned vs clean k-NN AUROC {sep:.2f}")
        return AnalysisResult(figure=fig, numbers={
            "layer": layer, "n": len(s), "poisoned": int(pois.sum()), **extra,
            "poison_separation_embedding": sep, "poison_separation_features": feat_sep})


class UMAP(TSNE):
    """The same picture with umap-learn's UMAP (faster on more samples; default n 3000). Needs the
    optional extra: pip install 'bdcore[analysis]'."""

    method = "UMAP"
    default_n = 3000

    def embed(self, f: np.ndarray, seed: int) -> tuple[np.ndarray, dict]:
        try:
            from umap import UMAP as _UMAP
        except ImportError:
            raise BdbError("the umap tool needs umap-learn: pip install 'bdcore[analysis]'") from None
        from sklearn.neighbors import NearestNeighbors

        c = self.config
        neighbours = min(c.n_neighbors, len(f) - 1)
        # the exact k-NN graph (each point its own first neighbour, as UMAP builds it), given to UMAP:
        # its own k-NN kernel is a parallel numba function whose JIT compilation costs ~12 s per process
        dist, idx = NearestNeighbors(n_neighbors=neighbours).fit(f).kneighbors(f)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*precomputed_knn.*|.*n_jobs.*|.*search index.*")
            emb = _UMAP(n_components=2, n_neighbors=neighbours, min_dist=c.min_dist, random_state=seed, n_jobs=1,
                        precomputed_knn=(idx, dist.astype(np.float32), None)).fit_transform(f)
        return np.asarray(emb), {"n_neighbors": neighbours, "min_dist": c.min_dist}


class NeuronActivation(Analysis):
    """Mean activation of every neuron (channel mean) on clean test images and on the same images
    with the trigger; neurons sorted by how much more the trigger excites them."""

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        clean, trig, s = paired_bd_test(ctx, ctx.n or 500)
        layer = ctx.map_layer()
        a = ctx.features(clean, layer, reduce="channel").mean(0).numpy()
        b = ctx.features(trig, layer, reduce="channel").mean(0).numpy()
        order = np.argsort(-(b - a))
        fig = Figure(figsize=(11, 4.5))
        ax = fig.add_subplot(1, 1, 1)
        x = np.arange(len(a))
        ax.bar(x - 0.2, a[order], 0.4, label="clean", color="C0")
        ax.bar(x + 0.2, b[order], 0.4, label="with trigger", color="C3")
        if len(a) <= 64:
            ax.set_xticks(x, order, fontsize=6, rotation=90)
        ax.set_xlabel("neuron (sorted by activation gain under the trigger)")
        ax.set_ylabel("mean activation")
        ax.legend()
        _finish(fig, ctx, f"neuron activation at {layer}, n={len(s)} non-target test images")
        gain = b - a
        return AnalysisResult(figure=fig, numbers={
            "layer": layer, "n": len(s), "neurons": len(a), "mean_clean": float(a.mean()), "mean_triggered": float(b.mean()),
            "max_gain": float(gain.max()), "top_neurons": order[:10].tolist(), "clean": a.tolist(), "triggered": b.tolist()})


class TAC(Analysis):
    """Trigger activation change per neuron: mean L2 distance of a channel's map with and without
    the trigger; for a defense run, the backdoored model's TAC is drawn behind the repaired one's."""

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        n = ctx.n or 300
        layer, tac = tac_of(ctx, n=n)
        order = torch.argsort(tac, descending=True).numpy()
        fig = Figure(figsize=(11, 4.5))
        ax = fig.add_subplot(1, 1, 1)
        x = np.arange(len(tac))
        numbers = {"layer": layer, "neurons": len(tac), "max": float(tac.max()), "mean": float(tac.mean()),
                   "top_neurons": order[:10].tolist(), "tac": tac.tolist()}
        if ctx.is_defense and ctx.model is not ctx.backdoored:
            _, before = tac_of(ctx, ctx.backdoored, n=n)
            ax.bar(x, before.numpy()[order], 0.9, color="lightgrey", label="backdoored model")
            numbers.update({"max_before": float(before.max()), "mean_before": float(before.mean())})
        ax.bar(x, tac.numpy()[order], 0.5, color="C3", label="this run's model")
        ax.set_xlabel("neuron (sorted by TAC)")
        ax.set_ylabel("trigger activation change")
        ax.legend()
        _finish(fig, ctx, f"TAC at {layer}")
        return AnalysisResult(figure=fig, numbers=numbers)


def _top_neurons(ctx: AnalysisContext, count: int) -> tuple[str, list[int]]:
    layer, tac = tac_of(ctx, n=200)
    return layer, torch.argsort(tac, descending=True)[:count].tolist()


def _framed(ax, img: torch.Tensor, red: bool) -> None:
    pic = as_picture(img)
    ax.imshow(pic, cmap="gray" if pic.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    if red:
        h, w = pic.shape[:2]
        ax.add_patch(Rectangle((-0.5, -0.5), w, h, fill=False, edgecolor="red", linewidth=3))


class TopActivated(Analysis):
    """The k images of a split (default mixed: the poisoned training set) that most activate one
    neuron (default: the one with the largest TAC); poisoned images framed red."""

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        c = self.config
        if c.neuron is None:
            layer, (neuron,) = _top_neurons(ctx, 1)
        else:
            layer, neuron = ctx.map_layer(), c.neuron
        s = ctx.sample(default_split="mixed", default_n=2000)
        act = ctx.features(s.x, layer, reduce="channel")
        if neuron >= act.shape[1]:
            raise BdbError(f"layer {layer} has {act.shape[1]} neurons; neuron {neuron} does not exist")
        top = torch.argsort(act[:, neuron], descending=True)[:c.k]
        cols = min(8, len(top))
        rows = (len(top) + cols - 1) // cols
        fig = Figure(figsize=(1.5 * cols, 1.7 * rows + 0.6))
        for i, j in enumerate(top.tolist()):
            ax = fig.add_subplot(rows, cols, i + 1)
            _framed(ax, s.x[j], bool(s.poisoned[j]))
            ax.set_title(f"{float(act[j, neuron]):.2f} y={int(s.y[j])}", fontsize=7)
        share = float(s.poisoned[top].float().mean())
        _finish(fig, ctx, f"top {len(top)} of {s.split} for neuron {neuron} of {layer}: {share:.0%} poisoned "
                          f"(base rate {float(s.poisoned.float().mean()):.0%})")
        return AnalysisResult(figure=fig, numbers={
            "layer": layer, "neuron": int(neuron), "k": len(top), "poisoned_share_top": share,
            "poisoned_share_split": float(s.poisoned.float().mean()), "indices": s.index[top].tolist()})


class ActivationDistribution(Analysis):
    """For the neurons with the largest TAC, the true classes of each one's top-k activating images
    (poisoned images counted in their own column), as a heat map."""

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        c = self.config
        layer, neurons = _top_neurons(ctx, c.neurons)
        s = ctx.sample(default_split="mixed", default_n=2000)
        act = ctx.features(s.x, layer, reduce="channel")
        k = ctx.num_classes
        counts = np.zeros((len(neurons), k + 1), dtype=np.int64)
        for r, nrn in enumerate(neurons):
            top = torch.argsort(act[:, nrn], descending=True)[:c.k]
            pois = s.poisoned[top]
            counts[r, k] = int(pois.sum())
            np.add.at(counts[r], s.y[top][~pois].numpy(), 1)
        fig = Figure(figsize=(max(6, 0.5 * k + 3), 0.45 * len(neurons) + 2))
        ax = fig.add_subplot(1, 1, 1)
        im = ax.imshow(counts, cmap="viridis", aspect="auto")
        fig.colorbar(im, ax=ax, label=f"of the top {c.k} images")
        names = [str(i) for i in range(k)] + ["poisoned"]
        ax.set_xticks(range(k + 1), names, rotation=90 if k > 12 else 0, fontsize=7)
        ax.set_yticks(range(len(neurons)), [f"n{v}" for v in neurons], fontsize=7)
        ax.set_xlabel("true class of the top activating images")
        ax.set_ylabel("neuron (by TAC)")
        _finish(fig, ctx, f"activation distribution at {layer}, {s.split}")
        return AnalysisResult(figure=fig, numbers={
            "layer": layer, "neurons": neurons, "k": c.k, "counts": counts.tolist(),
            "poisoned_share": float(counts[:, k].sum() / max(counts.sum(), 1))})


class FeatureMaps(Analysis):
    """A layer's output maps for one non-target test image, clean (top row) and with the trigger
    (middle), and their difference (bottom), for the channels the trigger changes most."""

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        clean, trig, s = paired_bd_test(ctx, 1)
        layer = ctx.map_layer()
        out = _layer_out(ctx, layer)
        with torch.no_grad():
            a, b = out(ctx.model, clean)[0].cpu(), out(ctx.model, trig)[0].cpu()
        if a.dim() == 1:  # a flat layer: show it as a 1 x N strip per "channel" of one
            a, b = a.view(1, 1, -1), b.view(1, 1, -1)
        diff = (b - a).flatten(1).norm(dim=1)
        chans = torch.argsort(diff, descending=True)[:self.config.channels].tolist()
        cols = len(chans) + 1
        fig = Figure(figsize=(1.3 * cols, 4.4))
        vmax = float(torch.maximum(a[chans].abs().max(), b[chans].abs().max())) or 1.0
        for r, (img, maps, name) in enumerate(((clean[0], a, "clean"), (trig[0], b, "trigger"), (None, b - a, "diff"))):
            ax = fig.add_subplot(3, cols, r * cols + 1)
            if img is not None:
                _framed(ax, img, name == "trigger")
            else:
                ax.axis("off")
            ax.set_title(name, fontsize=8)
            for i, ch in enumerate(chans):
                ax = fig.add_subplot(3, cols, r * cols + i + 2)
                ax.imshow(maps[ch].numpy(), cmap="RdBu_r" if name == "diff" else "magma",
                          vmin=-vmax if name == "diff" else 0, vmax=vmax)
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(f"ch {ch}", fontsize=7)
        _finish(fig, ctx, f"feature maps of {layer}, test image {int(s.index[0])} (class {int(s.y[0])})")
        return AnalysisResult(figure=fig, numbers={
            "layer": layer, "image": int(s.index[0]), "channels": chans, "change": [float(diff[c]) for c in chans]})
