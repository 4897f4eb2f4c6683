package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
)

func shapeOr(n int, shape []int) []int {
	if len(shape) == 0 {
		return []int{n}
	}
	return append([]int(nil), shape...)
}

// FromFloat32 encodes data as an F32 tensor. With no shape it is 1-d; build
// a Tensor with an empty Shape for a scalar.
func FromFloat32(data []float32, shape ...int) Tensor {
	b := make([]byte, 0, 4*len(data))
	for _, x := range data {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return Tensor{DType: F32, Shape: shapeOr(len(data), shape), Data: b}
}

// FromFloat64 encodes data as an F64 tensor.
func FromFloat64(data []float64, shape ...int) Tensor {
	b := make([]byte, 0, 8*len(data))
	for _, x := range data {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return Tensor{DType: F64, Shape: shapeOr(len(data), shape), Data: b}
}

// FromInt64 encodes data as an I64 tensor.
func FromInt64(data []int64, shape ...int) Tensor {
	b := make([]byte, 0, 8*len(data))
	for _, x := range data {
		b = binary.LittleEndian.AppendUint64(b, uint64(x))
	}
	return Tensor{DType: I64, Shape: shapeOr(len(data), shape), Data: b}
}

// FromInt32 encodes data as an I32 tensor.
func FromInt32(data []int32, shape ...int) Tensor {
	b := make([]byte, 0, 4*len(data))
	for _, x := range data {
		b = binary.LittleEndian.AppendUint32(b, uint32(x))
	}
	return Tensor{DType: I32, Shape: shapeOr(len(data), shape), Data: b}
}

// FromUint8 wraps data (not copied) as a U8 tensor.
func FromUint8(data []uint8, shape ...int) Tensor {
	return Tensor{DType: U8, Shape: shapeOr(len(data), shape), Data: data}
}

// FromBool encodes data as a BOOL tensor (one byte, 0 or 1, per element).
func FromBool(data []bool, shape ...int) Tensor {
	b := make([]byte, len(data))
	for i, x := range data {
		if x {
			b[i] = 1
		}
	}
	return Tensor{DType: BOOL, Shape: shapeOr(len(data), shape), Data: b}
}

// FromFloat32AsBF16 encodes data as BF16 with round-to-nearest-even, as
// PyTorch does.
func FromFloat32AsBF16(data []float32, shape ...int) Tensor {
	b := make([]byte, 0, 2*len(data))
	for _, x := range data {
		b = binary.LittleEndian.AppendUint16(b, float32ToBF16(x))
	}
	return Tensor{DType: BF16, Shape: shapeOr(len(data), shape), Data: b}
}

func (t Tensor) check() error {
	want, err := numBytes(t.DType, t.Shape)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	if len(t.Data) != want {
		return fmt.Errorf("safetensors: %s%v needs %d bytes, Data has %d", t.DType, t.Shape, want, len(t.Data))
	}
	return nil
}

// Float32s decodes F32, F64, F16 and BF16 tensors to float32.
func (t Tensor) Float32s() ([]float32, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	d := t.Data
	switch t.DType {
	case F32:
		out := make([]float32, len(d)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(d[4*i:]))
		}
		return out, nil
	case F64:
		out := make([]float32, len(d)/8)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(d[8*i:])))
		}
		return out, nil
	case F16:
		out := make([]float32, len(d)/2)
		for i := range out {
			out[i] = f16ToFloat32(binary.LittleEndian.Uint16(d[2*i:]))
		}
		return out, nil
	case BF16:
		out := make([]float32, len(d)/2)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(d[2*i:])) << 16)
		}
		return out, nil
	}
	return nil, fmt.Errorf("safetensors: cannot decode %s as float32", t.DType)
}

// Float64s decodes any float or integer dtype (and BOOL as 0/1) to float64.
func (t Tensor) Float64s() ([]float64, error) {
	switch t.DType {
	case F32, F16, BF16:
		f, err := t.Float32s()
		if err != nil {
			return nil, err
		}
		out := make([]float64, len(f))
		for i, x := range f {
			out[i] = float64(x)
		}
		return out, nil
	case F64:
		if err := t.check(); err != nil {
			return nil, err
		}
		out := make([]float64, len(t.Data)/8)
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:]))
		}
		return out, nil
	case U64:
		if err := t.check(); err != nil {
			return nil, err
		}
		out := make([]float64, len(t.Data)/8)
		for i := range out {
			out[i] = float64(binary.LittleEndian.Uint64(t.Data[8*i:]))
		}
		return out, nil
	}
	ints, err := t.Int64s()
	if err != nil {
		return nil, fmt.Errorf("safetensors: cannot decode %s as float64", t.DType)
	}
	out := make([]float64, len(ints))
	for i, x := range ints {
		out[i] = float64(x)
	}
	return out, nil
}

// Int64s decodes integer dtypes and BOOL to int64. U64 values above
// MaxInt64 are an error rather than wrapping negative.
func (t Tensor) Int64s() ([]int64, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	d := t.Data
	size, _ := DTypeSize(t.DType)
	out := make([]int64, len(d)/max(size, 1))
	le := binary.LittleEndian
	for i := range out {
		switch t.DType {
		case I64:
			out[i] = int64(le.Uint64(d[8*i:]))
		case U64:
			v := le.Uint64(d[8*i:])
			if v > math.MaxInt64 {
				return nil, fmt.Errorf("safetensors: U64 element %d (%d) overflows int64", i, v)
			}
			out[i] = int64(v)
		case I32:
			out[i] = int64(int32(le.Uint32(d[4*i:])))
		case U32:
			out[i] = int64(le.Uint32(d[4*i:]))
		case I16:
			out[i] = int64(int16(le.Uint16(d[2*i:])))
		case U16:
			out[i] = int64(le.Uint16(d[2*i:]))
		case I8:
			out[i] = int64(int8(d[i]))
		case U8:
			out[i] = int64(d[i])
		case BOOL:
			if d[i] != 0 {
				out[i] = 1
			}
		default:
			return nil, fmt.Errorf("safetensors: cannot decode %s as int64", t.DType)
		}
	}
	if len(out) == 0 {
		switch t.DType {
		case I64, U64, I32, U32, I16, U16, I8, U8, BOOL:
		default:
			return nil, fmt.Errorf("safetensors: cannot decode %s as int64", t.DType)
		}
	}
	return out, nil
}

// f16ToFloat32 converts IEEE 754 binary16 bits to float32 exactly.
func f16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN; keep the payload
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: value is mant * 2^-24, exact in float32.
	f := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}

func float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep it NaN after truncation
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}
