// The one user-assigned managed identity of offerloop: the Function App runs as it and reaches
// storage, Event Hubs, Cosmos DB, Redis and Application Insights with it (roles in rbac.bicep).

@description('Required. Name of the user-assigned managed identity.')
param name string

@description('Optional. Region of the identity.')
param location string = resourceGroup().location

@description('Optional. Tags of the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

@description('The name of the identity.')
output name string = identity.name

@description('The resource ID of the identity.')
output resourceId string = identity.id

@description('The client (application) ID of the identity: what the app settings name as __clientId.')
output clientId string = identity.properties.clientId

@description('The object (principal) ID of the identity: what role assignments grant to.')
output principalId string = identity.properties.principalId
