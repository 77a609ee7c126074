for i in $(seq 1 30); do
  if e {{.Args}} >/dev/null 2>&1; then echo "{{.Done}}"; exit 0; fi
  sleep 2
done
e {{.Args}} >/dev/null
echo "{{.Done}}"
