package torch

// #include "spreadtorch.h"
import "C"

// ViTSpec describes a Vision Transformer encoder (cgo/vit.cpp): patch embedding, learned CLS token and
// position embeddings, Depth pre-norm blocks, final LayerNorm, CLS output [N, Dim].
type ViTSpec struct {
	ImageH, ImageW int64 // the input size (position embeddings are built for it); multiples of Patch
	InChannels     int64
	Patch          int64 // patch side (4 in the reference)
	Dim            int64 // token width d; a multiple of Heads
	Depth          int64 // number of blocks
	Heads          int64
	MLPDim         int64   // hidden width of each block's MLP
	Dropout        float64 // training mode only: after the position embeddings, attention, MLP
	// The flavour. The reference code (thanos-code) has EmbedNorm and neither of the others; timm's
	// VisionTransformer and torch.nn.MultiheadAttention have QKVBias and AttnProj.
	QKVBias   bool // bias on the fused qkv projection (blocks.<i>.attn.qkv.bias)
	AttnProj  bool // output projection after attention (blocks.<i>.attn.proj)
	EmbedNorm bool // LayerNorm after the patch projection (patch_embed.norm)
}

// NewViT builds the ViT; it returns the module and its output dimension (Dim). Parameter names follow
// timm: patch_embed.proj.*, patch_embed.norm.*, cls_token, pos_embed, blocks.<i>.norm1.*,
// blocks.<i>.attn.qkv.*, blocks.<i>.attn.proj.*, blocks.<i>.norm2.*, blocks.<i>.mlp.fc1.*,
// blocks.<i>.mlp.fc2.*, norm.*.
func NewViT(s ViTSpec) (*Module, int64) {
	var h C.st_module
	var dim C.int64_t
	flags := C.int(0)
	if s.QKVBias {
		flags |= C.ST_VIT_QKV_BIAS
	}
	if s.AttnProj {
		flags |= C.ST_VIT_ATTN_PROJ
	}
	if s.EmbedNorm {
		flags |= C.ST_VIT_EMBED_NORM
	}
	check(C.st_vit_new(C.int64_t(s.ImageH), C.int64_t(s.ImageW), C.int64_t(s.InChannels), C.int64_t(s.Patch),
		C.int64_t(s.Dim), C.int64_t(s.Depth), C.int64_t(s.Heads), C.int64_t(s.MLPDim), C.double(s.Dropout), flags,
		&h, &dim), "vit")
	return newModule(h), int64(dim)
}
