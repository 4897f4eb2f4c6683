package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/spreadtrain/spreadtrain/pkg/train"
)

func checkpointFlag() cli.Flag {
	return &cli.StringFlag{Name: "checkpoint", Value: "best", Usage: "which checkpoint of the run: best (by coarse validation accuracy) or last"}
}

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "write the encoder's weights as safetensors with torchvision's parameter names (two files for a two-backbone run: OUT and OUT_b)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "run", Usage: "run folder", Required: true},
			&cli.StringFlag{Name: "out", Usage: "output .safetensors file", Required: true},
			checkpointFlag(),
		},
		Action: func(c *cli.Context) error {
			path, err := train.RunCheckpoint(c.String("run"), c.String("checkpoint"))
			if err != nil {
				return usageError{err}
			}
			files, err := train.ExportEncoder(path, c.String("out"))
			if err != nil {
				return err
			}
			fmt.Printf("wrote %s (encoder of %s)\n", strings.Join(files, " and "), path)
			return nil
		},
	}
}
