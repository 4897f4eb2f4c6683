package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/spreadtrain/spreadtrain/pkg/data"
)

// verifyName maps a dataset name of `train --data` to the name data.Verify knows.
var verifyName = map[string]string{"mnist": "mnist", "fashion-mnist": "fashion-mnist", "cifar10": "cifar-10-binary",
	"cifar100": "cifar-100-binary", "cifar10-jpg": "cifar10-jpg"}

func dataRootFlag() cli.Flag {
	return &cli.StringFlag{Name: "data-root", Usage: "where datasets live (default: $SPREADTRAIN_DATA, else ./data)"}
}

func dataRoot(c *cli.Context) string {
	if r := c.String("data-root"); r != "" {
		return r
	}
	return data.DataRoot()
}

func dataCommand() *cli.Command {
	return &cli.Command{
		Name:  "data",
		Usage: "fetch, list and verify datasets",
		Subcommands: []*cli.Command{
			{
				Name:      "fetch",
				Usage:     "obtain a dataset that needs nothing from you: mnist (through the Go module proxy, checksummed)",
				ArgsUsage: "NAME",
				Flags:     []cli.Flag{dataRootFlag()},
				Action: func(c *cli.Context) error {
					name := c.Args().First()
					switch name {
					case "mnist":
						dir := filepath.Join(dataRoot(c), "mnist")
						if _, err := data.Verify("mnist", dir); err == nil {
							fmt.Printf("mnist: already present and intact in %s\n", dir)
							return nil
						}
						if err := data.FetchMNIST(dir); err != nil {
							return err
						}
						fmt.Printf("mnist: fetched and verified (MD5) into %s\n", dir)
						return nil
					case "fashion-mnist":
						return fmt.Errorf("fashion-mnist comes from Debian's dataset-fashion-mnist package (make setup installs it into %s)", data.DefaultFashionMNISTDir)
					case "":
						return badInput("data fetch: name a dataset (mnist)")
					}
					return badInput("data fetch %q: only mnist can be fetched; cifar10/cifar100 binary archives and image folders are yours to bring (see README, Data)", name)
				},
			},
			{
				Name:  "list",
				Usage: "say which datasets are present under the data root",
				Flags: []cli.Flag{dataRootFlag()},
				Action: func(c *cli.Context) error {
					for _, info := range data.List(dataRoot(c)) {
						state := "missing"
						if info.Present {
							state = "present"
						}
						fmt.Printf("%-18s %-8s %s  %s\n", info.Name, state, info.Dir, info.Detail)
					}
					return nil
				},
			},
			{
				Name:      "verify",
				Usage:     "check a dataset's files against their published checksums (or sizes)",
				ArgsUsage: "NAME [DIR]",
				Flags:     []cli.Flag{dataRootFlag()},
				Action: func(c *cli.Context) error {
					name := c.Args().First()
					vname, ok := verifyName[name]
					if !ok {
						return badInput("data verify %q: want one of mnist, fashion-mnist, cifar10, cifar100, cifar10-jpg", name)
					}
					dir := c.Args().Get(1)
					if dir == "" {
						dir = filepath.Join(dataRoot(c), data.DefaultDir(name))
						if name == "fashion-mnist" {
							if _, err := os.Stat(dir); err != nil {
								dir = data.DefaultFashionMNISTDir
							}
						}
					}
					statuses, err := data.Verify(vname, dir)
					for _, st := range statuses {
						fmt.Println(st.String())
					}
					if err != nil {
						return err
					}
					fmt.Printf("%s: intact (%s)\n", name, dir)
					return nil
				},
			},
		},
	}
}
