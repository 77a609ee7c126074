{{.Cat}} {{.Path}} | tr -d '\n' | grep -qF -e {{q .PEM}}
